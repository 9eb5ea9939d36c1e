// /tsswarm/dispatch/1 on every manager, for the manager's whole life: a follower redirects the
// worker to the leader; the leader hands the stream to its running Dispatcher (a component that
// comes and goes with leadership). Every frame is parsed here; a bad one ends the stream, named.
import { pack, unpack } from "msgpackr";
import {
	BadDispatchMessageError,
	DISPATCH_PROTOCOL,
	type DispatchIo,
	type LeaderMessage,
	NoDispatcherError,
	parseWorkerMessage,
	type WorkerMessage,
} from "../../dispatch/index.ts";
import type { AgentError } from "../../errors.ts";
import type { Host } from "../../host/index.ts";
import type { ClusterStore } from "../../store/index.ts";
import { clusterDispatchStore, type DispatchStore, type FileSource } from "./store.ts";

export interface DispatchLogger {
	info(obj: object, msg?: string): void;
	warn(obj: object, msg?: string): void;
	debug(obj: object, msg?: string): void;
}

/** One worker's stream as the leader sees it. send() throws once the stream is gone. */
export interface WorkerLink {
	readonly peer: string;
	send(msg: LeaderMessage): void;
	close(): void;
}

/** What the endpoint needs of the running Dispatcher (open throws a named error to refuse). */
export interface SessionOpener {
	open(link: WorkerLink, hello: { sessionId: string; notices?: string[] }): SessionHandle | undefined;
}

export interface SessionHandle {
	onMessage(msg: Exclude<WorkerMessage, { t: "hello" }>): void;
	onClose(): void;
}

interface Ctx {
	peer: string;
	send(reply: unknown): void;
	close(): void;
}

export interface DispatchEndpointOptions {
	host: Host;
	store: ClusterStore | DispatchStore;
	logger: DispatchLogger;
	/** Secret and config data for the assignments (with a ClusterStore). */
	files?: FileSource;
}

const isDispatchStore = (s: ClusterStore | DispatchStore): s is DispatchStore => "tasksOf" in s;

export class DispatchEndpoint {
	readonly store: DispatchStore;
	readonly host: Host;
	private readonly log: DispatchLogger;
	private dispatcher: SessionOpener | undefined;
	private readonly streams = new WeakMap<Ctx, SessionHandle | "closed">();

	constructor(o: DispatchEndpointOptions) {
		this.host = o.host;
		this.store = isDispatchStore(o.store) ? o.store : clusterDispatchStore(o.store, o.files);
		this.log = o.logger;
	}

	async start(): Promise<void> {
		await this.host.handle(DISPATCH_PROTOCOL, (msg, ctx) => this.onFrame(ctx, msg));
	}

	async stop(): Promise<void> {
		await this.host.unhandle(DISPATCH_PROTOCOL);
	}

	/** The running Dispatcher takes new sessions until the returned function is called. */
	attach(d: SessionOpener): () => void {
		this.dispatcher = d;
		return () => {
			if (this.dispatcher === d) this.dispatcher = undefined;
		};
	}

	/**
	 * A session for the worker of this very node (libp2p does not dial itself): the same messages
	 * and checks as over the wire, each message copied through msgpackr.
	 */
	localSession<T>(talk: (io: DispatchIo) => Promise<T>, signal: AbortSignal): Promise<T> {
		const inbox: unknown[] = [];
		let waiter: { resolve(v: unknown): void; reject(e: Error): void } | undefined;
		let failure: Error | undefined;
		const fail = (e: Error) => {
			failure ??= e;
			waiter?.reject(failure);
			waiter = undefined;
		};
		const ctx: Ctx = {
			peer: this.host.peerId,
			send: (reply) => {
				if (failure) throw failure;
				const copy = unpack(pack(reply));
				if (waiter) {
					const w = waiter;
					waiter = undefined;
					w.resolve(copy);
				} else inbox.push(copy);
			},
			close: () => queueMicrotask(() => fail(new Error(`${DISPATCH_PROTOCOL}: the manager closed the session`))),
		};
		const onAbort = () => fail(new Error(`${DISPATCH_PROTOCOL}: session aborted`));
		signal.addEventListener("abort", onAbort, { once: true });
		if (signal.aborted) onAbort();
		const io: DispatchIo = {
			peer: this.host.peerId,
			send: (msg) => {
				if (failure) throw failure;
				const copy = unpack(pack(msg));
				queueMicrotask(() => this.onFrame(ctx, copy));
			},
			next: () =>
				inbox.length > 0
					? Promise.resolve(inbox.shift())
					: failure
						? Promise.reject(failure)
						: new Promise((resolve, reject) => {
								waiter = { resolve, reject };
							}),
		};
		return talk(io).finally(() => {
			signal.removeEventListener("abort", onAbort);
			fail(new Error(`${DISPATCH_PROTOCOL}: session ended`));
			this.end(ctx);
		});
	}

	private end(ctx: Ctx): void {
		const h = this.streams.get(ctx);
		this.streams.set(ctx, "closed");
		if (h && h !== "closed") h.onClose();
	}

	private refuse(ctx: Ctx, err: AgentError): void {
		this.host.refused(ctx.peer, DISPATCH_PROTOCOL, err);
		this.answer(ctx, { t: "error", code: err.code, message: err.message });
	}

	/** Send one last message, then close. */
	private answer(ctx: Ctx, msg: LeaderMessage): void {
		try {
			ctx.send(msg);
		} catch {}
		ctx.close();
		this.end(ctx);
	}

	private onFrame(ctx: Ctx, raw: unknown): void {
		const state = this.streams.get(ctx);
		if (state === "closed") return;
		let msg: WorkerMessage;
		try {
			msg = parseWorkerMessage(ctx.peer, raw);
		} catch (err) {
			this.refuse(ctx, err as BadDispatchMessageError);
			return;
		}
		if (state) {
			if (msg.t === "hello") this.refuse(ctx, new BadDispatchMessageError(ctx.peer, "hello sent twice"));
			else state.onMessage(msg);
			return;
		}
		if (msg.t !== "hello") {
			this.refuse(ctx, new BadDispatchMessageError(ctx.peer, `${msg.t} before hello`));
			return;
		}
		if (!this.store.isLeader()) {
			const leader = this.store.leader();
			if (leader && leader.id !== this.host.peerId) {
				this.log.debug({ peer: ctx.peer, leader: leader.id }, "dispatch: redirecting a worker to the leader");
				this.answer(ctx, { t: "redirect", leader });
			} else this.answer(ctx, { t: "error", code: "ERR_NO_LEADER", message: "no leader is known; try again" });
			return;
		}
		if (!this.dispatcher) {
			const err = new NoDispatcherError(this.host.peerId);
			this.answer(ctx, { t: "error", code: err.code, message: err.message });
			return;
		}
		const link: WorkerLink = {
			peer: ctx.peer,
			send: (m) => ctx.send(m),
			close: () => {
				ctx.close();
				this.streams.set(ctx, "closed");
			},
		};
		let handle: SessionHandle | undefined;
		try {
			handle = this.dispatcher.open(link, msg);
		} catch (err) {
			this.refuse(ctx, err as AgentError);
			return;
		}
		this.streams.set(ctx, handle ?? "closed");
	}
}
