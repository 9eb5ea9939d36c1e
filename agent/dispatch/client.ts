// The worker's end of /tsswarm/dispatch/1: one session at a time with the leader (found through
// any manager, which redirects), assignments handed to the sink, the sink's status reports sent up
// in batches, heartbeats at the leader's period, and reconnects with backoff when the stream breaks.
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Host } from "../host/index.ts";
import type { Task, TaskStatus } from "../services/index.ts";
import { BadDispatchMessageError, DispatchRefusedError, HeartbeatTimeoutError } from "./errors.ts";
import {
	type AssignedFile,
	type AssignedNetwork,
	DISPATCH_PROTOCOL,
	type LeaderMessage,
	LIMITS,
	type MeshView,
	type NetworkView,
	NOTICES,
	parseLeaderMessage,
	type StatusReport,
} from "./protocol.ts";

/** One set of changes for the worker: `full` replaces everything it has (tasks not listed go). */
export interface Assignment {
	full: boolean;
	tasks: Task[];
	networks: AssignedNetwork[];
	/** Tasks to stop and remove (in a full set: those whose desired state is remove). */
	removed: string[];
	/** Network views replaced (a full set: every one the node has). */
	views?: NetworkView[];
	/** The routing mesh, replaced whole when present (always in a full set). */
	mesh?: MeshView;
	/** Secret and config data the tasks use (each version once per session). */
	files?: AssignedFile[];
}

/** What the client drives: the worker (agent/worker) in the agent, a recorder in tests. */
export interface AssignmentSink {
	/** Calls are made one after the other: the next waits for the promise of the last. */
	assign(a: Assignment): void | Promise<void>;
	/** False while no session is up; true once the full set arrived again. */
	setConnected(connected: boolean): void;
	on(event: "status", listener: (reports: StatusReport[]) => void): unknown;
	off(event: "status", listener: (reports: StatusReport[]) => void): unknown;
}

/** A session's frames, as Host.session gives them. */
export interface DispatchIo {
	peer: string;
	send(msg: unknown): void;
	next(): Promise<unknown>;
}

/** The dispatch endpoint of this very node, when it is a manager (libp2p does not dial itself). */
export interface LocalDispatch {
	localSession<T>(talk: (io: DispatchIo) => Promise<T>, signal: AbortSignal): Promise<T>;
}

export interface ClientLogger {
	info(obj: object, msg?: string): void;
	warn(obj: object, msg?: string): void;
	debug(obj: object, msg?: string): void;
}

export interface DispatcherClientOptions {
	host: Host;
	/** Managers to try (a NodeDirectory): id and IPv4:PORT. */
	directory: { managers(): Array<{ id: string; addr: string }> };
	sink: AssignmentSink;
	logger: ClientLogger;
	local?: LocalDispatch;
	/** Reconnect backoff, doubling from min to max, with jitter (default 100 ms to 5 s). */
	backoffMinMs?: number;
	backoffMaxMs?: number;
	/** How long a manager has to answer the hello (default 5 s). */
	connectTimeoutMs?: number;
	/** Reports are sent at most this long after the sink gave them (default 20 ms). */
	flushMs?: number;
	/** Leader heartbeats missed before the session is given up (default 3). */
	missedHeartbeats?: number;
}

export interface DispatcherClientEvents {
	/** The full set arrived: the session is up. */
	connected: [{ manager: string; sessionId: string; heartbeatMs: number }];
	/** A session ended, or an attempt failed. */
	disconnected: [{ manager: string; error: Error }];
	/** The leader says this node's record changed at store version `version` (refresh the directory). */
	directory: [{ version: number }];
	/** A manager sent something that is not a message of the protocol. */
	refused: [{ peer: string; error: BadDispatchMessageError }];
}

type Outcome = { redirect?: { id: string; addr: string } };

/** setTimeout's bound: Host.session's overall timeout, switched off for a long-lived session. */
const FOREVER_MS = 2_147_483_647;

export class DispatcherClient extends EventEmitter<DispatcherClientEvents> {
	private readonly o: DispatcherClientOptions;
	private ctl: AbortController | undefined;
	private loop: Promise<void> | undefined;
	/** The session's io once its full set arrived. */
	private io: DispatchIo | undefined;
	private managerId: string | undefined;
	/** The latest status of every task we have, resent after a reconnect. */
	private readonly latest = new Map<string, TaskStatus>();
	private readonly unsent = new Map<string, TaskStatus>();
	private assigned = new Set<string>();
	private flushTimer: NodeJS.Timeout | undefined;
	/** Calls into the sink, in order: an assignment is applied before the next one or setConnected. */
	private sinkQueue: Promise<void> = Promise.resolve();
	private readonly onStatus = (reports: StatusReport[]) => this.report(reports);

	constructor(o: DispatcherClientOptions) {
		super();
		this.o = o;
	}

	/** The manager of the current session (the leader), when one is up. */
	get manager(): string | undefined {
		return this.io ? this.managerId : undefined;
	}

	start(): void {
		if (this.ctl) return;
		this.ctl = new AbortController();
		this.o.sink.on("status", this.onStatus);
		this.toSink(() => this.o.sink.setConnected(false));
		this.loop = this.run(this.ctl.signal);
	}

	async stop(): Promise<void> {
		if (!this.ctl) return;
		this.ctl.abort(new Error("dispatcher client stopped"));
		this.o.sink.off("status", this.onStatus);
		clearTimeout(this.flushTimer);
		await this.loop;
		await this.sinkQueue;
		this.ctl = undefined;
	}

	private report(reports: StatusReport[]): void {
		for (const r of reports) {
			this.latest.set(r.taskId, r.status);
			this.unsent.set(r.taskId, r.status);
		}
		if (!this.flushTimer) this.flushTimer = setTimeout(() => this.flush(), this.o.flushMs ?? 20);
	}

	private flush(): void {
		this.flushTimer = undefined;
		// Not connected: they wait in `latest` and go out once the next session has its full set.
		if (this.io) this.sendReports([...this.unsent].map(([taskId, status]) => ({ taskId, status })));
		this.unsent.clear();
	}

	private sendReports(reports: StatusReport[]): void {
		const io = this.io;
		if (!io) return;
		try {
			for (let i = 0; i < reports.length; i += LIMITS.reportsPerFrame)
				io.send({ t: "status", reports: reports.slice(i, i + LIMITS.reportsPerFrame) });
		} catch (err) {
			this.o.logger.debug({ err: (err as Error).message }, "dispatch: reports not sent; resent after reconnect");
		}
	}

	private async run(signal: AbortSignal): Promise<void> {
		let attempt = 0;
		let redirect: { id: string; addr: string } | undefined;
		let hops = 0;
		while (!signal.aborted) {
			const managers = redirect ? [redirect] : this.o.directory.managers().sort(() => Math.random() - 0.5);
			redirect = undefined;
			for (const m of managers) {
				if (signal.aborted) break;
				const r = await this.attempt(m, signal);
				if (r.full) attempt = 0;
				if (r.redirect && hops < 3) {
					hops++;
					redirect = r.redirect;
					break;
				}
			}
			// A redirect is followed at once (at most 3 in a row); anything else backs off first.
			if (!redirect) hops = 0;
			if (!redirect && !signal.aborted) {
				const max = this.o.backoffMaxMs ?? 5000;
				const ms = Math.min(max, (this.o.backoffMinMs ?? 100) * 2 ** attempt++);
				await sleep(ms / 2 + Math.random() * (ms / 2), signal);
			}
		}
	}

	/** One session with one manager; never throws. */
	private async attempt(m: { id: string; addr: string }, signal: AbortSignal): Promise<Outcome & { full: boolean }> {
		const ctl = new AbortController();
		const sig = AbortSignal.any([signal, ctl.signal]);
		const state = { full: false };
		const talk = (io: DispatchIo) => this.talk(io, m.id, ctl, state);
		const self = m.id === this.o.host.peerId;
		if (self && !this.o.local) return { full: false };
		// By id (the peer store knows where it is now); the directory's address is a hint.
		const session = self
			? this.o.local!.localSession(talk, sig)
			: this.o.host.session(m.id, DISPATCH_PROTOCOL, talk, {
					timeoutMs: FOREVER_MS,
					signal: sig,
					hint: m.addr,
				});
		// Closing a stream to a peer that went silent may hang: an abort moves on regardless.
		const aborted = new Promise<never>((_, reject) => {
			const onAbort = () => reject(sig.reason);
			if (sig.aborted) onAbort();
			else sig.addEventListener("abort", onAbort, { once: true });
		});
		try {
			const r = await Promise.race([session, aborted]);
			return { ...r, full: state.full };
		} catch (err) {
			const e = err as Error;
			if (!signal.aborted) {
				this.o.logger.debug({ manager: m.id, err: e.message }, "dispatch session ended");
				this.emit("disconnected", { manager: m.id, error: e });
			}
			return { full: state.full };
		} finally {
			session.catch(() => {});
			aborted.catch(() => {});
			ctl.abort();
		}
	}

	private async talk(
		io: DispatchIo,
		manager: string,
		ctl: AbortController,
		state: { full: boolean },
	): Promise<Outcome> {
		const sessionId = randomUUID();
		const self = this.o.host.peerId;
		const parse = (raw: unknown): LeaderMessage => {
			try {
				return parseLeaderMessage(io.peer, self, raw);
			} catch (err) {
				const e = err as BadDispatchMessageError;
				this.o.logger.warn({ manager: io.peer, code: e.code }, e.message);
				this.emit("refused", { peer: io.peer, error: e });
				throw e;
			}
		};
		let watchdog = setTimeout(
			() => ctl.abort(new HeartbeatTimeoutError(io.peer, this.o.connectTimeoutMs ?? 5000)),
			this.o.connectTimeoutMs ?? 5000,
		);
		let beat: NodeJS.Timeout | undefined;
		try {
			io.send({ t: "hello", sessionId, notices: [...NOTICES] });
			const first = parse(await io.next());
			if (first.t === "redirect") return { redirect: first.leader };
			if (first.t === "error") throw new DispatchRefusedError(io.peer, first.code, first.message);
			if (first.t !== "session" || first.sessionId !== sessionId)
				throw new BadDispatchMessageError(io.peer, `expected the session for ${sessionId}, got ${first.t}`);
			const hb = first.heartbeatMs;
			const deadline = hb * (this.o.missedHeartbeats ?? 3);
			const rearm = () => {
				clearTimeout(watchdog);
				watchdog = setTimeout(() => ctl.abort(new HeartbeatTimeoutError(io.peer, deadline)), deadline);
			};
			rearm();
			beat = setInterval(() => {
				try {
					io.send({ t: "heartbeat" });
				} catch (err) {
					ctl.abort(err);
				}
			}, hb);
			let gathering: Assignment | undefined;
			for (;;) {
				const msg = parse(await io.next());
				rearm();
				if (msg.t === "heartbeat") continue;
				if (msg.t === "directory") {
					this.emit("directory", { version: msg.version });
					continue;
				}
				if (msg.t === "unknown") {
					this.o.logger.debug(
						{ manager: io.peer, type: msg.type },
						"dispatch: a message type this node does not know; ignored",
					);
					continue;
				}
				if (msg.t === "error") throw new DispatchRefusedError(io.peer, msg.code, msg.message);
				if (msg.t !== "assignments") throw new BadDispatchMessageError(io.peer, `unexpected ${msg.t} in a session`);
				if (!state.full && !msg.full) throw new BadDispatchMessageError(io.peer, "a change before the full set");
				if (gathering && !msg.full) throw new BadDispatchMessageError(io.peer, "a change inside a full set");
				if (msg.full) {
					gathering ??= { full: true, tasks: [], networks: [], removed: [], views: [], mesh: { ports: [] } };
					gathering.tasks.push(...msg.tasks);
					gathering.networks.push(...msg.networks);
					gathering.removed.push(...msg.removed);
					gathering.views!.push(...(msg.views ?? []));
					if (msg.files?.length) gathering.files = [...(gathering.files ?? []), ...msg.files];
					if (msg.mesh) gathering.mesh = msg.mesh;
					if (msg.more) continue;
					const full = gathering;
					gathering = undefined;
					this.deliver(full);
					if (!state.full) {
						state.full = true;
						this.io = io;
						this.managerId = manager;
						this.toSink(() => this.o.sink.setConnected(true));
						this.o.logger.info({ manager, session: sessionId, tasks: full.tasks.length }, "dispatch session up");
						this.emit("connected", { manager, sessionId, heartbeatMs: hb });
					}
					// What the last session may have lost: the latest status of each task we have.
					this.sendReports(
						full.tasks.flatMap((t) => {
							const status = this.latest.get(t.id);
							return status ? [{ taskId: t.id, status }] : [];
						}),
					);
				} else
					this.deliver({
						full: false,
						tasks: msg.tasks,
						networks: msg.networks,
						removed: msg.removed,
						...(msg.views?.length ? { views: msg.views } : {}),
						...(msg.mesh ? { mesh: msg.mesh } : {}),
						...(msg.files?.length ? { files: msg.files } : {}),
					});
			}
		} finally {
			clearTimeout(watchdog);
			clearInterval(beat);
			if (this.io === io) {
				this.io = undefined;
				this.toSink(() => this.o.sink.setConnected(false));
			}
		}
	}

	private deliver(a: Assignment): void {
		if (a.full) {
			this.assigned = new Set(a.tasks.map((t) => t.id));
			for (const id of this.latest.keys()) if (!this.assigned.has(id)) this.latest.delete(id);
		} else {
			for (const t of a.tasks) this.assigned.add(t.id);
			for (const id of a.removed) this.assigned.delete(id);
		}
		this.toSink(() => this.o.sink.assign(a));
	}

	private toSink(call: () => void | Promise<void>): void {
		this.sinkQueue = this.sinkQueue
			.then(call)
			.catch((err: Error) =>
				this.o.logger.warn({ err: err.message, code: (err as { code?: string }).code }, "dispatch: the worker refused"),
			);
	}
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve) => {
		const t = setTimeout(done, ms);
		function done() {
			clearTimeout(t);
			signal.removeEventListener("abort", done);
			resolve();
		}
		signal.addEventListener("abort", done, { once: true });
	});
}
