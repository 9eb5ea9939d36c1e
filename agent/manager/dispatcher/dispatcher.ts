// The leader's dispatcher: one session per worker node, streaming exactly that node's assignments
// (full set on connect, then deltas), taking its batched status reports, and watching its heartbeats:
// a node silent for missedHeartbeats periods is marked down in its record, a new session marks it ready.
import { EventEmitter } from "node:events";
import { HeartbeatTimeoutError, type ReportRefusedError, UnknownNodeError } from "../../dispatch/index.ts";
import type { Node } from "../../store/index.ts";
import { SessionAssignments } from "./assignments.ts";
import type { DispatchEndpoint, DispatchLogger, SessionHandle, WorkerLink } from "./endpoint.ts";
import { ReportWriter } from "./reports.ts";
import type { DispatchChange, DispatchStore } from "./store.ts";
import { NetworkViews } from "./views.ts";

export type NodeState = "ready" | "down";

export interface DispatcherOptions {
	endpoint: DispatchEndpoint;
	logger: DispatchLogger;
	/** The period workers heartbeat at (default 1000 ms); keep it well under the host's streamIdleMs. */
	heartbeatMs?: number;
	/** Periods without a heartbeat before a node is down (default 3). */
	missedHeartbeats?: number;
	/** When the dispatcher starts (a new leader), how long a node that was ready has to connect (default 3 deadlines). */
	graceMs?: number;
	/** Status reports are written every flushMs (default 100) or as soon as maxBatch wait (default 100). */
	flushMs?: number;
	maxBatch?: number;
}

export interface DispatcherEvents {
	/** A node's state as the dispatcher wrote it into its record. */
	node: [{ nodeId: string; state: NodeState; message: string }];
	/** A worker's status report that was not written. */
	refused: [{ nodeId: string; taskId: string; error: ReportRefusedError }];
	/** A session opened or ended. */
	session: [{ nodeId: string; sessionId: string; open: boolean }];
	/** Status reports committed (one event per transaction). */
	written: [{ reports: number }];
}

interface Session {
	nodeId: string;
	sessionId: string;
	link: WorkerLink;
	lastSeen: number;
	assignments: SessionAssignments;
	/** The worker takes directory notices (its hello said so): sent when its record's role changes. */
	notices: boolean;
	role: string | undefined;
}

export class Dispatcher extends EventEmitter<DispatcherEvents> {
	private readonly store: DispatchStore;
	private readonly endpoint: DispatchEndpoint;
	private readonly log: DispatchLogger;
	readonly heartbeatMs: number;
	private readonly deadlineMs: number;
	private readonly graceMs: number;
	private readonly flushMs: number;
	private readonly maxBatch: number;
	private readonly sessions = new Map<string, Session>();
	/** Task id -> the node whose session was sent it. */
	private readonly holders = new Map<string, string>();
	/** Nodes with no session yet, and when they are down if none opens. */
	private readonly expected = new Map<string, number>();
	private readonly nodeWrites = new Map<string, Promise<void>>();
	private flushQueued = false;
	private signal: AbortSignal | undefined;
	private views: NetworkViews | undefined;

	constructor(o: DispatcherOptions) {
		super();
		this.endpoint = o.endpoint;
		this.store = o.endpoint.store;
		this.log = o.logger;
		this.heartbeatMs = o.heartbeatMs ?? 1000;
		this.deadlineMs = this.heartbeatMs * (o.missedHeartbeats ?? 3);
		this.graceMs = o.graceMs ?? this.deadlineMs * 3;
		this.flushMs = o.flushMs ?? 100;
		this.maxBatch = o.maxBatch ?? 100;
	}

	/** Connected nodes (for tests and stats). */
	connected(): string[] {
		return [...this.sessions.keys()];
	}

	/** Runs until `signal` aborts (this node stopped leading): then every session is closed. */
	async start(signal: AbortSignal): Promise<void> {
		if (this.signal) throw new Error("a Dispatcher starts once; make a new one for the next term");
		this.signal = signal;
		const writer = new ReportWriter({
			store: this.store,
			logger: this.log,
			flushMs: this.flushMs,
			maxBatch: this.maxBatch,
			signal,
			refused: (nodeId, error) => {
				this.log.warn({ node: nodeId, task: error.taskId, code: error.code }, error.message);
				this.emit("refused", { nodeId, taskId: error.taskId, error });
			},
			written: (reports) => this.emit("written", { reports }),
		});
		const now = Date.now();
		for (const id of this.store.nodeIds())
			if (this.store.node(id)?.value.status?.state !== "down") this.expected.set(id, now + this.graceMs);
		this.views = new NetworkViews(this.store);
		this.views.refresh();
		const unwatch = this.store.watch((c) => this.onChange(c));
		const tick = setInterval(() => this.checkHeartbeats(), Math.max(20, Math.floor(this.heartbeatMs / 2)));
		const detach = this.endpoint.attach({ open: (link, hello) => this.open(link, hello, writer) });
		const stop = () => {
			clearInterval(tick);
			unwatch();
			detach();
			for (const s of [...this.sessions.values()]) this.end(s, "ERR_DISPATCHER_STOPPED", "the dispatcher stopped");
			this.expected.clear();
			this.log.info({}, "dispatcher stopped");
		};
		if (signal.aborted) stop();
		else signal.addEventListener("abort", stop, { once: true });
		this.log.info({ heartbeatMs: this.heartbeatMs }, "dispatcher running");
	}

	private open(
		link: WorkerLink,
		{ sessionId, notices }: { sessionId: string; notices?: string[] },
		writer: ReportWriter,
	): SessionHandle | undefined {
		const nodeId = link.peer;
		// The store is the allow-list (the endpoint refuses the stream with this error).
		const rec = this.store.node(nodeId);
		if (!rec) throw new UnknownNodeError(nodeId);
		const old = this.sessions.get(nodeId);
		if (old) this.end(old, "ERR_SESSION_REPLACED", "a newer session of this node replaced it");
		const s: Session = {
			nodeId,
			sessionId,
			link,
			lastSeen: Date.now(),
			assignments: new SessionAssignments(nodeId, this.store, this.views!),
			notices: notices?.includes("directory") ?? false,
			role: rec.value.role,
		};
		this.sessions.set(nodeId, s);
		this.expected.delete(nodeId);
		if (!this.send(s, { t: "session", sessionId, heartbeatMs: this.heartbeatMs })) return undefined;
		this.sendAll(s, s.assignments.full());
		this.log.info({ node: nodeId, session: sessionId, tasks: s.assignments.sent.size }, "dispatcher session opened");
		this.emit("session", { nodeId, sessionId, open: true });
		this.setNodeState(nodeId, "ready", "heartbeats arrive");
		return {
			onMessage: (msg) => {
				if (this.sessions.get(nodeId) !== s) return;
				s.lastSeen = Date.now();
				if (msg.t === "heartbeat") this.send(s, { t: "heartbeat" });
				else writer.add(nodeId, msg.reports);
			},
			onClose: () => {
				if (this.sessions.get(nodeId) === s) this.drop(s);
			},
		};
	}

	/** Send to a session; a stream that is gone ends it (the node then misses its heartbeats). */
	private send(s: Session, msg: Parameters<WorkerLink["send"]>[0]): boolean {
		try {
			s.link.send(msg);
			return true;
		} catch (err) {
			this.log.debug({ node: s.nodeId, err: (err as Error).message }, "dispatcher: session stream gone");
			this.drop(s);
			return false;
		}
	}

	private sendAll(s: Session, frames: Parameters<WorkerLink["send"]>[0][]): void {
		for (const f of frames) {
			if (this.sessions.get(s.nodeId) !== s) return;
			for (const t of f.t === "assignments" ? f.tasks : []) this.holders.set(t.id, s.nodeId);
			this.send(s, f);
		}
	}

	/** Forget a session (its stream is closed or gone); the heartbeat deadline decides when the node is down. */
	private drop(s: Session): void {
		if (this.sessions.get(s.nodeId) !== s) return;
		this.sessions.delete(s.nodeId);
		for (const id of s.assignments.sent.keys()) if (this.holders.get(id) === s.nodeId) this.holders.delete(id);
		if (!this.signal?.aborted) this.expected.set(s.nodeId, s.lastSeen + this.deadlineMs);
		this.emit("session", { nodeId: s.nodeId, sessionId: s.sessionId, open: false });
	}

	private end(s: Session, code: string, message: string): void {
		try {
			s.link.send({ t: "error", code, message });
		} catch {}
		s.link.close();
		this.drop(s);
	}

	private checkHeartbeats(): void {
		const now = Date.now();
		for (const s of [...this.sessions.values()]) {
			if (now - s.lastSeen <= this.deadlineMs) continue;
			const err = new HeartbeatTimeoutError(s.nodeId, this.deadlineMs);
			this.log.warn({ node: s.nodeId, code: err.code }, err.message);
			this.end(s, err.code, err.message);
		}
		for (const [id, at] of this.expected) {
			if (now < at) continue;
			this.expected.delete(id);
			this.setNodeState(id, "down", "heartbeat failure");
		}
	}

	private onChange(c: DispatchChange): void {
		const views = this.views!;
		if (c.kind === "task") views.onTask(c.id, c.task);
		else if (c.kind === "service") views.onService(c.id);
		else if (c.kind === "network") views.onNetwork(c.id);
		else if (c.kind === "node") views.onNode();
		else views.rebuild();
		if (c.kind === "task") {
			const holder = this.holders.get(c.id);
			if (holder) this.sessions.get(holder)?.assignments.touchTask(c.id);
			if (c.task?.nodeId && c.task.nodeId !== holder) this.sessions.get(c.task.nodeId)?.assignments.touchTask(c.id);
		} else if (c.kind === "network") {
			for (const s of this.sessions.values()) if (s.assignments.hasNetwork(c.id)) s.assignments.touchNetwork(c.id);
		} else if (c.kind === "node") {
			const n = this.store.node(c.id);
			if (!n) {
				// Removed from the cluster: its session ends, and it is no longer expected.
				this.expected.delete(c.id);
				const s = this.sessions.get(c.id);
				if (s) this.end(s, "ERR_UNKNOWN_NODE", "this node was removed from the cluster");
			} else if (!this.sessions.has(c.id) && !this.expected.has(c.id) && n.value.status === undefined)
				this.expected.set(c.id, Date.now() + this.graceMs); // a node that just joined
			else this.noticeRole(c.id, n.value.role, n.version);
		} else if (c.kind === "reset") {
			views.refresh();
			for (const s of this.sessions.values()) this.sendAll(s, s.assignments.full());
			return;
		}
		// One transaction's changes go out together, once it is applied.
		if (this.flushQueued) return;
		this.flushQueued = true;
		setImmediate(() => {
			this.flushQueued = false;
			if (this.signal?.aborted) return;
			// Views first: a session's delta then carries the views of the networks its new tasks use.
			if (views.refresh()) for (const s of this.sessions.values()) s.assignments.touchViews();
			for (const s of [...this.sessions.values()]) if (s.assignments.dirty) this.sendAll(s, s.assignments.delta());
		});
	}

	/**
	 * The node's record changed role (autopilot promoted or demoted it): tell it at once, so it
	 * need not wait for its next directory poll. Only sessions whose hello takes the notice.
	 */
	private noticeRole(nodeId: string, role: string, version: number): void {
		const s = this.sessions.get(nodeId);
		if (!s || s.role === role) return;
		s.role = role;
		if (!s.notices) return;
		this.log.debug({ node: nodeId, role, version }, "dispatcher: the node's role changed; telling it");
		this.send(s, { t: "directory", version });
	}

	/** Write the node's state into its record when it differs (serialized per node, retried on conflicts). */
	private setNodeState(nodeId: string, state: NodeState, message: string): void {
		const prev = this.nodeWrites.get(nodeId) ?? Promise.resolve();
		const next = prev.then(async () => {
			for (let attempt = 0; attempt < 5 && !this.signal?.aborted; attempt++) {
				const rec = this.store.node(nodeId);
				if (!rec || rec.value.status?.state === state) return;
				const value: Node = { ...rec.value, status: { state, message, timestamp: new Date().toISOString() } };
				try {
					await this.store.updateNode(nodeId, rec.version, value, this.signal);
					this.log.info({ node: nodeId, state, message }, "node state");
					this.emit("node", { nodeId, state, message });
					return;
				} catch (err) {
					if ((err as { code?: string }).code !== "ERR_VERSION_CONFLICT") {
						this.log.warn({ node: nodeId, state, err: (err as Error).message }, "dispatcher: node state not written");
						return;
					}
				}
			}
		});
		this.nodeWrites.set(nodeId, next);
		void next.finally(() => {
			if (this.nodeWrites.get(nodeId) === next) this.nodeWrites.delete(nodeId);
		});
	}
}
