// Writes go to the Raft leader. A manager that is not the leader forwards the request over
// /tsswarm/manager/1 (members only, bounded msgpackr frames) to the leader, which runs it; a
// request that reaches a server that lost leadership meanwhile is retried at the new leader.
import { NotLeaderError } from "../../consensus/index.ts";
import { statusOf } from "../errors.ts";
import type { Host } from "../host/index.ts";
import { type ClusterStore, NotManagerError, type StoreLogger, storeErrorFrom } from "../store/index.ts";
import { BadManagerRequestError, NotManagerPeerError } from "./errors.ts";

export const MANAGER_PROTOCOL = "/tsswarm/manager/1";

export type LeaderHandler = (body: Record<string, unknown>, from: string) => Promise<unknown>;

export interface HandlerOptions {
	/** Served to any member (a worker too), not only to Raft servers: reads. */
	members?: boolean;
	/** Answered by whichever manager is asked, from its replica: no leader needed. */
	local?: boolean;
}

type Reply = { ok: unknown } | { error: { code: string; message: string; status?: number } };

/** The error as data, with the HTTP status its class has here (the asking node rebuilds it with it). */
const asReply = (err: unknown): Reply => {
	const e = err as { code?: string; message?: string };
	return { error: { code: e.code ?? "ERR_MANAGER", message: e.message ?? String(err), status: statusOf(err) } };
};

/** What the rpc needs of the store (a test passes a stand-in). */
export type RpcStore = Pick<
	ClusterStore,
	"id" | "configuration" | "isLeader" | "leader" | "waitForLeader" | "barrier"
> & {
	raftStats(): { term: number };
};

export class LeaderRpc {
	private readonly handlers = new Map<string, LeaderHandler>();
	private readonly options = new Map<string, HandlerOptions>();
	private readonly host: Host;
	private readonly store: RpcStore;
	private readonly log: StoreLogger;

	constructor(host: Host, store: RpcStore, log: StoreLogger) {
		this.host = host;
		this.store = store;
		this.log = log;
	}

	private ready: { term: number; p: Promise<void> } | undefined;

	/**
	 * The leader's handlers read its state machine, which may not yet have applied what earlier
	 * terms committed (a new leader applies them once its own no-op commits): once per term, wait
	 * for a barrier first. Without it a read-modify-write met a stale version and failed.
	 */
	private leaderReady(kind: string): Promise<void> {
		if (this.options.get(kind)?.local) return Promise.resolve();
		const term = this.store.raftStats().term;
		if (this.ready?.term !== term) {
			const p = this.store.barrier();
			this.ready = { term, p };
			p.catch(() => {
				if (this.ready?.p === p) this.ready = undefined;
			});
		}
		return this.ready.p;
	}

	register(kind: string, handler: LeaderHandler, o: HandlerOptions = {}): void {
		this.handlers.set(kind, handler);
		this.options.set(kind, o);
	}

	async start(): Promise<void> {
		await this.host.handle(MANAGER_PROTOCOL, async (msg, ctx) => {
			const m = msg as { kind?: unknown; body?: unknown } | null;
			const handler = typeof m?.kind === "string" ? this.handlers.get(m.kind) : undefined;
			if (!handler || !m?.body || typeof m.body !== "object" || Array.isArray(m.body)) {
				const err = new BadManagerRequestError(
					ctx.peer,
					handler ? "body must be an object" : `unknown request ${String(m?.kind)}`,
				);
				this.log.warn({ peer: ctx.peer, protocol: MANAGER_PROTOCOL, code: err.code }, err.message);
				ctx.send(asReply(err));
				ctx.close();
				return;
			}
			let reply: Reply;
			const opts = this.options.get(m.kind as string) ?? {};
			// Workers are members but may not change cluster state: only Raft servers may ask.
			if (!opts.members && !this.store.configuration().servers.some((s) => s.id === ctx.peer)) {
				const err = new NotManagerPeerError(ctx.peer, m.kind as string);
				this.log.warn({ peer: ctx.peer, protocol: MANAGER_PROTOCOL, code: err.code }, err.message);
				reply = asReply(err);
			} else if (!opts.local && !this.store.isLeader()) reply = asReply(new NotLeaderError(this.store.leader()?.id));
			else {
				try {
					await this.leaderReady(m.kind as string);
					reply = { ok: await handler(m.body as Record<string, unknown>, ctx.peer) };
				} catch (err) {
					reply = asReply(err);
				}
			}
			ctx.send(reply);
			ctx.close();
		});
	}

	async stop(): Promise<void> {
		await this.host.unhandle(MANAGER_PROTOCOL);
	}

	/** Run `kind` on the leader (here, when this node leads). */
	async call(kind: string, body: Record<string, unknown>, o: { timeoutMs?: number } = {}): Promise<unknown> {
		const deadline = Date.now() + (o.timeoutMs ?? 15_000);
		for (let attempt = 0; ; attempt++) {
			const left = Math.max(1, deadline - Date.now());
			const leader = await this.store.waitForLeader(left);
			let reply: Reply;
			if (leader.id === this.store.id) {
				const handler = this.handlers.get(kind);
				if (!handler) throw new BadManagerRequestError("self", `unknown request ${kind}`);
				try {
					await this.leaderReady(kind);
					reply = { ok: await handler(body, this.store.id) };
				} catch (err) {
					if (!(err instanceof NotLeaderError)) throw err;
					reply = asReply(err);
				}
			} else {
				// By id: the configuration's address is a hint (the leader may have a new one).
				reply = (await this.host.session(
					leader.id,
					MANAGER_PROTOCOL,
					async (io) => {
						io.send({ kind, body });
						return io.next();
					},
					{ timeoutMs: left, hint: leader.address },
				)) as Reply;
			}
			if ("ok" in reply) return reply.ok;
			// The leader no longer counts this node as a manager (autopilot demoted it, a `node
			// demote`): its replica is on the way out; the user reads what a worker would say.
			if (reply.error?.code === NotManagerPeerError.code) throw new NotManagerError();
			const retry = reply.error?.code === "ERR_NOT_LEADER" && Date.now() < deadline && attempt < 5;
			if (!retry) throw storeErrorFrom(reply.error ?? { message: "malformed answer from the leader" });
			// Leadership moved while the request travelled: wait for the next leader, then retry.
			await new Promise((r) => setTimeout(r, 200));
		}
	}
}
