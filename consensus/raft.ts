// The Raft shell, shaped like hashicorp/raft: it owns the timers, the disk and the network around
// the pure core. Each Ready batch is handled in order: persist (snapshot, entries and hard state:
// one fsync for everything proposed meanwhile — group commit), send, apply, answer futures.
import { EventEmitter } from "node:events";
import { pack, unpack } from "msgpackr";
import { type Logger, type RaftConfig, validateConfig } from "./config.ts";
import {
	decodeConfiguration,
	encodeConfiguration,
	type HardState,
	type Message,
	RaftCore,
	type Ready,
	type RoleName,
	validateMessage,
} from "./core/index.ts";
import {
	InvalidMessageError,
	LeadershipLostError,
	NonMemberError,
	NotLeaderError,
	RaftError,
	RaftTimeoutError,
	ShutdownError,
	StaleTermError,
	UnknownServerError,
} from "./errors.ts";
import type { FSM } from "./fsm.ts";
import { SnapshotAssembler, snapshotChecksum, snapshotChunks } from "./snapshot-stream.ts";
import type {
	Configuration,
	LogEntry,
	LogStore,
	LogType,
	SnapshotMeta,
	SnapshotStore,
	StableStore,
} from "./storage/types.ts";
import type { Transport } from "./transport/types.ts";

/** The stable store key of the term, vote and commit (recovery.ts reads it too). */
export const HARD_STATE_KEY = "raft.hardstate";

const isReplication = (m: Message) =>
	m.type === "append" || m.type === "heartbeat" || m.type === "snapshot" || m.type === "timeoutNow";

export type RaftState = RoleName | "shutdown";

/** A server joined or left the configuration this node follows (hashicorp's PeerObservation). */
export interface PeerObservation {
	id: string;
	address: string;
	suffrage: "voter" | "nonvoter";
	removed: boolean;
}

export interface RaftEvents {
	leader: [{ id: string; term: number }];
	state: [RaftState];
	peer: [PeerObservation];
	/** Entries up to this index are applied to the FSM. */
	applied: [number];
	"heartbeat-failed": [{ peer: string; error: Error }];
	"invalid-message": [{ peer: string; error: Error }];
	/** A message refused because its sender is not a server of the latest configuration. */
	"refused-message": [{ peer: string; type: Message["type"]; term: number; error: NonMemberError }];
}

export interface FutureOptions {
	signal?: AbortSignal;
	timeoutMs?: number;
}

interface Pending {
	term: number;
	resolve: (v: { index: number; response: unknown }) => void;
	reject: (e: Error) => void;
}

interface PendingRead {
	resolve: () => void;
	reject: (e: Error) => void;
	index?: number;
}

/** Someone waiting for the core to reach a state; checked whenever the core may have moved. */
interface Waiter {
	check: () => boolean;
	resolve: () => void;
	reject: (e: Error) => void;
}

export class Raft extends EventEmitter<RaftEvents> {
	readonly id: string;
	private readonly cfg: RaftConfig;
	private readonly log: Logger;
	private core: RaftCore | undefined;
	private timer: NodeJS.Timeout | undefined;
	private pumping = false;
	private pumpAgain = false;
	/** The running drain of Ready batches (resolved when it is idle). */
	private draining: Promise<void> = Promise.resolve();
	private waiters = new Set<Waiter>();
	private peers = new Map<string, { address: string; suffrage: "voter" | "nonvoter" }>();
	/** When a valid message from each peer last arrived (ms epoch): hashicorp's LastContact, per server. */
	private contact = new Map<string, number>();
	/** The configuration observePeers last looked at (the core keeps one object per config entry). */
	private observedConfig: Configuration | undefined;
	private counters = {
		snapshotsInstalled: 0,
		snapshotsSent: 0,
		snapshotChunksReceived: 0,
		logWrites: 0,
		staleMessages: 0,
		refusedMessages: 0,
	};
	private assembler: SnapshotAssembler;
	/** A snapshot being written in the background, and one written whose compaction is due. */
	private snapshotting: Promise<SnapshotMeta | undefined> | undefined;
	private compactDue: SnapshotMeta | undefined;
	/** sha256 of the last snapshot sent, so resends do not hash it again. */
	private sentSum = { id: "", sum: "" };
	/** The snapshot restored at start (0: none), after skipping any that failed their checksum. */
	private startSnapshotIndex = 0;
	private shut = false;
	private pending = new Map<number, Pending>();
	private reads = new Map<number, PendingRead>();
	private readSeq = 0;
	private lastSnapshot: SnapshotMeta | undefined;
	private fatal: Error | undefined;
	private lastLeader = "";
	private savedHard: HardState = { term: 0, vote: "", commit: 0 };

	private readonly fsm: FSM;
	private readonly logs: LogStore;
	private readonly stable: StableStore;
	private readonly snaps: SnapshotStore;
	private readonly transport: Transport;

	constructor(
		config: RaftConfig,
		fsm: FSM,
		logs: LogStore,
		stable: StableStore,
		snaps: SnapshotStore,
		transport: Transport,
	) {
		super();
		this.cfg = validateConfig(config);
		this.id = config.localId;
		this.log = config.logger;
		this.fsm = fsm;
		this.logs = logs;
		this.stable = stable;
		this.snaps = snaps;
		this.transport = transport;
		this.assembler = new SnapshotAssembler(this.cfg.maxSnapshotBytes);
	}

	/** Write the initial configuration on a brand-new server (hashicorp's BootstrapCluster). */
	static async bootstrap(logs: LogStore, stable: StableStore, configuration: Configuration): Promise<void> {
		if ((await logs.lastIndex()) > 0 || (await stable.get(HARD_STATE_KEY))) {
			throw new RaftError("cannot bootstrap a server that already has state", "ERR_CANT_BOOTSTRAP");
		}
		decodeConfiguration(encodeConfiguration(configuration)); // validates
		await logs.storeLogs([{ index: 1, term: 1, type: "configuration", data: encodeConfiguration(configuration) }]);
		await stable.set(HARD_STATE_KEY, pack({ term: 1, vote: "", commit: 0 } satisfies HardState));
	}

	/** Recover state from the stores, start the transport and the clock. */
	async start(signal?: AbortSignal): Promise<void> {
		const hsRaw = await this.stable.get(HARD_STATE_KEY);
		const hardState = hsRaw ? (unpack(hsRaw) as HardState) : { term: 0, vote: "", commit: 0 };
		this.savedHard = hardState;
		const first = await this.logs.firstIndex();
		const last = await this.logs.lastIndex();
		const snapMeta = await this.restoreNewestSnapshot(first);
		const entries = last > 0 ? await this.logs.getLogs(Math.max(first, (snapMeta?.index ?? 0) + 1), last) : [];
		this.core = new RaftCore(
			{
				id: this.id,
				electionTicks: this.cfg.electionTicks,
				heartbeatTicks: this.cfg.heartbeatTicks,
				preVote: this.cfg.preVote,
				checkQuorum: this.cfg.checkQuorum,
				maxEntriesPerAppend: this.cfg.maxAppendEntries,
				maxBytesPerAppend: this.cfg.maxAppendBytes,
				maxInflight: this.cfg.maxInflight,
				random: Math.random,
				onRefuse: (m) => this.onRefused(m),
			},
			{ hardState, snapshot: snapMeta, entries },
		);
		await this.transport.start(
			{
				onMessage: (from, msg) => this.onMessage(from, msg),
				onSendFailure: (to, error) => this.emit("heartbeat-failed", { peer: to, error }),
			},
			signal,
		);
		this.timer = setInterval(() => {
			this.core?.tick();
			this.pump();
		}, this.cfg.tickMs);
		this.log.info(
			{ id: this.id, term: hardState.term, lastIndex: last, snapshot: snapMeta?.index ?? 0 },
			"raft started",
		);
		this.pump();
	}

	/**
	 * Restore the newest snapshot that passes its checksum (like hashicorp, an unreadable one is
	 * skipped for an older one), provided the log still continues right after it.
	 */
	private async restoreNewestSnapshot(logFirst: number): Promise<SnapshotMeta | undefined> {
		const snapshots = await this.snaps.list();
		for (const s of snapshots) {
			let opened: { meta: SnapshotMeta; data: Uint8Array };
			try {
				opened = await this.snaps.open(s.id);
			} catch (err) {
				this.log.warn({ snapshot: s.id, err: (err as Error).message }, "skipping an unreadable snapshot");
				continue;
			}
			if (logFirst > opened.meta.index + 1) {
				throw new RaftError(
					`snapshot ${s.id} (index ${opened.meta.index}) does not reach the log, which starts at ${logFirst}; newer snapshots are unreadable`,
					"ERR_SNAPSHOT_GAP",
				);
			}
			await this.fsm.restore(opened.data);
			this.lastSnapshot = opened.meta;
			this.startSnapshotIndex = opened.meta.index;
			if (s !== snapshots[0]) this.log.warn({ snapshot: s.id }, "started from an older snapshot");
			return opened.meta;
		}
		if (snapshots.length > 0 && logFirst !== 1) {
			throw new RaftError("no snapshot is readable and the log does not start at 1", "ERR_SNAPSHOT_GAP");
		}
		return undefined;
	}

	private onMessage(from: string, raw: unknown): void {
		if (this.shut || !this.core) return;
		let msg: Message;
		try {
			msg = validateMessage(raw, { maxEntries: this.cfg.maxAppendEntries * 4 });
			if (msg.from !== from)
				throw new InvalidMessageError(`message claims to be from ${msg.from} but came from ${from}`);
			if (msg.type === "snapshot") {
				this.counters.snapshotChunksReceived++;
				const whole = this.assembler.push(from, msg);
				if (!whole) return;
				msg = whole;
			}
		} catch (err) {
			this.log.warn({ peer: from, err: (err as Error).message }, "dropped an invalid raft message");
			this.emit("invalid-message", { peer: from, error: err as Error });
			return;
		}
		this.contact.set(from, Date.now());
		if (msg.term < this.core.term && msg.type !== "serverQuery" && msg.type !== "serverInfo") {
			// Normal after an election (delayed traffic), so counted and logged at debug only; the
			// core still sees it, to answer a stale leader with the current term.
			this.counters.staleMessages++;
			const err = new StaleTermError(msg.type, msg.term, this.core.term);
			this.log.debug({ peer: from, code: err.code, err: err.message }, "stale-term raft message");
		}
		try {
			this.core.step(msg);
		} catch (err) {
			this.log.warn({ peer: from, err: (err as Error).message }, "raft message refused");
			return;
		}
		this.pump();
		this.wake();
	}

	/** The core refused a non-member's message (before any term logic): count, log and report it. */
	private onRefused(m: Message): void {
		this.counters.refusedMessages++;
		const error = new NonMemberError(m.from, m.type, m.term);
		this.log.warn(
			{ peer: m.from, type: m.type, term: m.term, code: error.code, err: error.message },
			"raft message refused",
		);
		this.emit("refused-message", { peer: m.from, type: m.type, term: m.term, error });
	}

	// --- the Ready loop ------------------------------------------------------------------------

	private pump(): void {
		if (this.pumping) {
			this.pumpAgain = true;
			return;
		}
		this.pumping = true;
		this.draining = this.drain().finally(() => {
			this.pumping = false;
			this.wake();
		});
	}

	/** Resolve the waiters whose condition now holds. */
	private wake(): void {
		for (const w of this.waiters) {
			if (!w.check()) continue;
			this.waiters.delete(w);
			w.resolve();
		}
	}

	/** A future that resolves once `check` holds (re-checked on every change of the core). */
	private when(what: string, check: () => boolean, o: FutureOptions): Promise<void> {
		if (check()) return Promise.resolve();
		let w: Waiter | undefined;
		const p = new Promise<void>((resolve, reject) => {
			w = { check, resolve, reject };
			this.waiters.add(w);
		});
		return this.withDeadline(what, p, o, () => this.waiters.delete(w!));
	}

	/** Observe configuration changes as peer events (runs after every batch: skip an unchanged config). */
	private observePeers(core: RaftCore): void {
		const cfg = core.configuration();
		if (cfg === this.observedConfig) return;
		this.observedConfig = cfg;
		for (const s of cfg.servers) {
			if (s.id === this.id) continue;
			const known = this.peers.get(s.id);
			if (known && known.address === s.address && known.suffrage === s.suffrage) continue;
			this.peers.set(s.id, { address: s.address, suffrage: s.suffrage });
			this.emit("peer", { id: s.id, address: s.address, suffrage: s.suffrage, removed: false });
		}
		for (const [id, p] of this.peers) {
			if (cfg.servers.some((s) => s.id === id)) continue;
			this.peers.delete(id);
			this.emit("peer", { id, address: p.address, suffrage: p.suffrage, removed: true });
		}
	}

	private async drain(): Promise<void> {
		try {
			do {
				this.pumpAgain = false;
				const core = this.core;
				if (core && this.compactDue && !this.shut) await this.compactLog(core);
				while (core && !this.shut && core.hasReady()) {
					await this.handle(core, core.ready());
					this.observePeers(core);
					this.wake();
				}
			} while (this.pumpAgain && !this.shut);
		} catch (err) {
			// A disk failure leaves us unable to keep Raft's promises: stop rather than lie.
			this.fatal = err as Error;
			this.log.error({ err: (err as Error).message }, "raft storage failed; shutting down");
			await this.shutdown();
		}
	}

	private async handle(core: RaftCore, rd: Ready): Promise<void> {
		// A leader's replication messages go out while its own write is in flight (Raft §10.2.1);
		// the core counts the leader toward a quorum only once that write is done. Votes and
		// acknowledgements wait for durability.
		for (const m of rd.messages) if (isReplication(m)) this.sendMessage(core, m);
		if (rd.snapshot) {
			const sink = await this.snaps.create({
				index: rd.snapshot.meta.index,
				term: rd.snapshot.meta.term,
				configuration: rd.snapshot.meta.configuration,
				configurationIndex: rd.snapshot.meta.configurationIndex,
			});
			await sink.write(rd.snapshot.data);
			await sink.close();
			await this.fsm.restore(rd.snapshot.data);
			const last = await this.logs.lastIndex();
			if (last > 0) await this.logs.deleteRange(await this.logs.firstIndex(), last);
			this.lastSnapshot = { ...rd.snapshot.meta, id: sink.id };
			this.counters.snapshotsInstalled++;
			this.log.info({ index: rd.snapshot.meta.index, leader: core.leader }, "installed a snapshot from the leader");
		}
		// Committed entries are already durable on a quorum, so they are applied while this batch's
		// new entries are being written (as etcd's server does): a commit costs one fsync of latency,
		// not two. The write is issued first so the disk works while the FSM does.
		const persisted = this.persist(rd);
		const applied = this.applyAll(rd.committed);
		try {
			await persisted;
		} catch (err) {
			await applied.catch(() => {});
			throw err;
		}
		for (const m of rd.messages) if (!isReplication(m)) this.sendMessage(core, m);
		if (rd.softState) this.onSoftState(rd.softState.role, rd.softState.leader, core.term);
		await applied;
		for (const rs of rd.readStates) {
			const r = this.reads.get(rs.ctx);
			if (r) r.index = rs.index;
		}
		for (const ctx of rd.droppedReads) {
			this.reads.get(ctx)?.reject(new LeadershipLostError());
			this.reads.delete(ctx);
		}
		core.advance(rd);
		if (rd.committed.length > 0 || rd.snapshot) this.emit("applied", core.log.applied);
		this.answerReads(core.log.applied);
		if (!this.snapshotting && core.log.applied - (this.lastSnapshot?.index ?? 0) >= this.cfg.snapshotThreshold) {
			const { done } = await this.beginSnapshot();
			done.catch((err: Error) => this.log.error({ err: err.message }, "snapshot failed; will retry"));
		}
	}

	/** Entries and hard state of a Ready batch: one log write (one fsync) and, if needed, one stable write. */
	private async persist(rd: Ready): Promise<void> {
		if (rd.entries.length > 0) {
			await this.logs.storeLogs(rd.entries);
			this.counters.logWrites++;
		}
		// Term and vote must be durable before we answer anyone; the commit index need not be (it is
		// re-learned from the leader after a restart), so a commit-only change costs no write.
		const hs = rd.hardState;
		if (hs && (hs.term !== this.savedHard.term || hs.vote !== this.savedHard.vote)) {
			await this.stable.set(HARD_STATE_KEY, pack(hs));
			this.savedHard = hs;
		}
	}

	private async applyAll(entries: LogEntry[]): Promise<void> {
		for (const e of entries) await this.applyEntry(e);
	}

	private sendMessage(core: RaftCore, m: Message): void {
		const address = core.configuration().servers.find((s) => s.id === m.to)?.address ?? m.to;
		if (m.type === "snapshot") {
			// Attach the snapshot's bytes from the store; the core only knows its metadata.
			// Chunked, so a snapshot larger than the transport's frame bound still goes through.
			const id = this.lastSnapshot?.index === m.meta.index ? this.lastSnapshot.id : m.meta.id;
			this.snaps.open(id).then(
				({ data }) => {
					if (this.sentSum.id !== id) this.sentSum = { id, sum: snapshotChecksum(data) };
					this.counters.snapshotsSent++;
					for (const c of snapshotChunks(m, data, this.cfg.snapshotChunkBytes, this.sentSum.sum)) {
						this.transport.send(m.to, address, c);
					}
				},
				(err: Error) => this.log.warn({ peer: m.to, err: err.message }, "could not read the snapshot to send"),
			);
			return;
		}
		this.transport.send(m.to, address, m);
	}

	private onSoftState(role: RoleName, leader: string, term: number): void {
		this.emit("state", role);
		if (role !== "leader") {
			// Proposals in flight may or may not commit: their proposers must not wait forever.
			for (const p of this.pending.values()) p.reject(new LeadershipLostError());
			this.pending.clear();
		}
		if (leader && leader !== this.lastLeader) {
			this.log.info({ leader, term }, "leader elected");
			this.emit("leader", { id: leader, term });
		}
		this.lastLeader = leader;
	}

	private async applyEntry(e: LogEntry): Promise<void> {
		let response: unknown;
		if (e.type === "command") response = await this.fsm.apply(e);
		const p = this.pending.get(e.index);
		if (!p) return;
		this.pending.delete(e.index);
		if (p.term === e.term) p.resolve({ index: e.index, response });
		else p.reject(new LeadershipLostError());
	}

	private answerReads(applied: number): void {
		for (const [ctx, r] of this.reads) {
			if (r.index !== undefined && r.index <= applied) {
				this.reads.delete(ctx);
				r.resolve();
			}
		}
	}

	/**
	 * Start a snapshot at the applied index: the FSM is captured now (between applies, so it matches
	 * the index) and written in the background, so the Ready loop keeps replicating meanwhile. Once
	 * it is durable the log is compacted by the drain, between batches. `done` resolves with it.
	 */
	private async beginSnapshot(): Promise<{ done: Promise<SnapshotMeta | undefined> }> {
		if (this.snapshotting) return { done: this.snapshotting };
		const core = this.core;
		if (!core) return { done: Promise.resolve(undefined) };
		const index = core.log.applied;
		if (index === 0 || index === this.lastSnapshot?.index) return { done: Promise.resolve(this.lastSnapshot) };
		// The configuration as of the snapshot's index: the commit may already be past a later change.
		const cfgAt = core.configurationAt(index);
		const term = core.log.term(index)!;
		const snap = await this.fsm.snapshot();
		const done = (async () => {
			try {
				const sink = await this.snaps.create({
					index,
					term,
					configuration: cfgAt.config,
					configurationIndex: cfgAt.index,
				});
				try {
					await snap.persist(sink);
					await sink.close();
				} catch (err) {
					await sink.cancel();
					throw err;
				}
				const meta: SnapshotMeta = {
					id: sink.id,
					index,
					term,
					configuration: cfgAt.config,
					configurationIndex: cfgAt.index,
					size: 0,
				};
				// A snapshot installed from the leader meanwhile may be newer: never go back.
				if (index > (this.lastSnapshot?.index ?? 0)) {
					this.lastSnapshot = meta;
					this.compactDue = meta;
				}
				this.log.info({ index }, "snapshot taken");
				this.pump();
				return meta;
			} finally {
				snap.release();
				this.snapshotting = undefined;
			}
		})();
		this.snapshotting = done;
		return { done };
	}

	/** Fold the log up to a durable snapshot (keeping trailing entries); only between Ready batches. */
	private async compactLog(core: RaftCore): Promise<void> {
		const meta = this.compactDue;
		if (!meta) return;
		this.compactDue = undefined;
		core.compact(meta, this.cfg.trailingLogs);
		const first = await this.logs.firstIndex();
		if (first > 0 && core.log.snapshotIndex >= first) await this.logs.deleteRange(first, core.log.snapshotIndex);
	}

	// --- futures -------------------------------------------------------------------------------

	private live(): RaftCore {
		if (this.shut || !this.core) throw this.fatal ?? new ShutdownError();
		return this.core;
	}

	private withDeadline<T>(what: string, p: Promise<T>, o: FutureOptions, onGiveUp: () => void): Promise<T> {
		if (!o.signal && !o.timeoutMs) return p;
		return new Promise<T>((resolve, reject) => {
			const timer = o.timeoutMs
				? setTimeout(() => {
						onGiveUp();
						reject(new RaftTimeoutError(what, o.timeoutMs!));
					}, o.timeoutMs)
				: undefined;
			const onAbort = () => {
				onGiveUp();
				reject(o.signal!.reason ?? new Error("aborted"));
			};
			o.signal?.addEventListener("abort", onAbort, { once: true });
			p.then(
				(v) => {
					clearTimeout(timer);
					o.signal?.removeEventListener("abort", onAbort);
					resolve(v);
				},
				(e: unknown) => {
					clearTimeout(timer);
					o.signal?.removeEventListener("abort", onAbort);
					reject(e);
				},
			);
		});
	}

	private propose(type: LogType, data: Uint8Array, o: FutureOptions): Promise<{ index: number; response: unknown }> {
		const core = this.live();
		o.signal?.throwIfAborted();
		const [e] = core.propose([{ type, data }]);
		const p = new Promise<{ index: number; response: unknown }>((resolve, reject) => {
			this.pending.set(e!.index, { term: e!.term, resolve, reject });
		});
		this.pump();
		// Giving up only stops waiting: the entry may still commit, as with hashicorp's futures.
		return this.withDeadline(`apply at index ${e!.index}`, p, o, () => this.pending.delete(e!.index));
	}

	/** Replicate a command; resolves with the FSM's response once it is applied here. */
	apply(data: Uint8Array, o: FutureOptions = {}): Promise<{ index: number; response: unknown }> {
		if (data.length > this.cfg.maxCommandBytes) {
			return Promise.reject(
				new RaftError(`command of ${data.length} bytes exceeds ${this.cfg.maxCommandBytes}`, "ERR_TOO_LARGE"),
			);
		}
		try {
			return this.propose("command", data, o);
		} catch (err) {
			return Promise.reject(err);
		}
	}

	/** Resolves once everything before it is applied (hashicorp's Barrier). */
	async barrier(o: FutureOptions = {}): Promise<void> {
		await this.propose("barrier", new Uint8Array(), o);
	}

	/** Confirms this node is still the leader with a quorum (ReadIndex); then reads here are linearizable. */
	async verifyLeader(o: FutureOptions = {}): Promise<void> {
		o.signal?.throwIfAborted();
		const core = this.live();
		const ctx = ++this.readSeq;
		core.readIndex(ctx);
		const p = new Promise<void>((resolve, reject) => this.reads.set(ctx, { resolve, reject }));
		this.pump();
		return this.withDeadline("verifyLeader", p, o, () => this.reads.delete(ctx));
	}

	private async changeConfiguration(next: (c: Configuration) => Configuration, o: FutureOptions): Promise<number> {
		o.signal?.throwIfAborted();
		const core = this.live();
		if (core.role !== "leader") throw new NotLeaderError(core.leader || undefined);
		// One change at a time, and only once this leader committed an entry of its term: wait
		// for that (woken by the core's progress, bounded) rather than fail the caller with a
		// race it cannot see.
		await this.when(
			"a membership change to be allowed",
			() => this.shut || core.canChangeConfiguration() || core.role !== "leader",
			{
				timeoutMs: this.cfg.tickMs * this.cfg.electionTicks * 4,
				...o,
			},
		);
		this.live();
		const e = core.proposeConfiguration(next(core.configuration()));
		const p = new Promise<{ index: number; response: unknown }>((resolve, reject) => {
			this.pending.set(e.index, { term: e.term, resolve, reject });
		});
		this.pump();
		const r = await this.withDeadline(`configuration change at ${e.index}`, p, o, () => this.pending.delete(e.index));
		return r.index;
	}

	addVoter(id: string, address: string, o: FutureOptions = {}): Promise<number> {
		return this.changeConfiguration(
			(c) => ({ servers: [...c.servers.filter((s) => s.id !== id), { id, address, suffrage: "voter" }] }),
			o,
		);
	}

	addNonvoter(id: string, address: string, o: FutureOptions = {}): Promise<number> {
		return this.changeConfiguration((c) => {
			const cur = c.servers.find((s) => s.id === id);
			// Like hashicorp: adding an existing voter as a non-voter leaves it a voter.
			const suffrage = cur?.suffrage === "voter" ? "voter" : "nonvoter";
			return { servers: [...c.servers.filter((s) => s.id !== id), { id, address, suffrage }] };
		}, o);
	}

	demoteVoter(id: string, o: FutureOptions = {}): Promise<number> {
		return this.changeConfiguration((c) => {
			if (!c.servers.some((s) => s.id === id)) throw new UnknownServerError(id);
			return { servers: c.servers.map((s) => (s.id === id ? { ...s, suffrage: "nonvoter" as const } : s)) };
		}, o);
	}

	removeServer(id: string, o: FutureOptions = {}): Promise<number> {
		return this.changeConfiguration((c) => {
			if (!c.servers.some((s) => s.id === id)) throw new UnknownServerError(id);
			return { servers: c.servers.filter((s) => s.id !== id) };
		}, o);
	}

	/** Hand leadership to `to` (or the most up-to-date voter); resolves when someone else leads. */
	async leadershipTransfer(to?: string, o: FutureOptions = {}): Promise<string> {
		const core = this.live();
		if (core.role !== "leader") throw new NotLeaderError(core.leader || undefined);
		const target =
			to ??
			Object.entries(core.status().progress)
				.filter(([id]) => core.configuration().servers.some((s) => s.id === id && s.suffrage === "voter"))
				.sort((a, b) => b[1].match - a[1].match)[0]?.[0];
		if (!target) throw new RaftError("no other voter to transfer leadership to", "ERR_NO_TARGET");
		core.transferLeadership(target);
		this.pump();
		const p = new Promise<string>((resolve) => {
			const onLeader = ({ id }: { id: string }) => {
				if (id !== this.id) {
					this.off("leader", onLeader);
					resolve(id);
				}
			};
			this.on("leader", onLeader);
		});
		return this.withDeadline(
			"leadership transfer",
			p,
			{ timeoutMs: this.cfg.tickMs * this.cfg.electionTicks * 2, ...o },
			() => {},
		);
	}

	/** Resolves once entries up to `index` are applied here (e.g. a follower catching up). */
	waitForApplied(index: number, o: FutureOptions = {}): Promise<void> {
		const core = this.live();
		return this.when(`applied index ${index}`, () => core.log.applied >= index, o);
	}

	/** Take a snapshot now and compact the log. */
	async snapshot(o: FutureOptions = {}): Promise<SnapshotMeta | undefined> {
		o.signal?.throwIfAborted();
		this.live();
		// Between Ready batches only, so the FSM's state matches the applied index.
		while (this.pumping) await this.withDeadline("snapshot", this.draining, o, () => {});
		this.live();
		this.pumping = true;
		try {
			let meta = await this.withDeadline("snapshot", (await this.beginSnapshot()).done, o, () => {});
			// One started automatically may have been in flight: then take a fresh one.
			if ((meta?.index ?? 0) < (this.core?.log.applied ?? 0)) {
				meta = await this.withDeadline("snapshot", (await this.beginSnapshot()).done, o, () => {});
			}
			const core = this.core;
			if (core && !this.shut) await this.compactLog(core);
			return meta;
		} finally {
			this.pumping = false;
			this.pump();
		}
	}

	state(): RaftState {
		if (this.shut) return "shutdown";
		return this.core?.role ?? "follower";
	}

	leader(): { id: string; address: string } | undefined {
		const core = this.core;
		if (!core?.leader) return undefined;
		const s = core.configuration().servers.find((x) => x.id === core.leader);
		return { id: core.leader, address: s?.address ?? "" };
	}

	configuration(): Configuration {
		return this.core?.configuration() ?? { servers: [] };
	}

	stats() {
		const st = this.core?.status();
		return {
			state: this.state(),
			term: st?.term ?? 0,
			leader: st?.leader ?? "",
			commitIndex: st?.commit ?? 0,
			/** What the leader has committed as far as this server knows (its own commit may lag it). */
			leaderCommitIndex: st?.leaderCommit ?? 0,
			appliedIndex: st?.applied ?? 0,
			lastLogIndex: st?.lastIndex ?? 0,
			lastSnapshotIndex: this.lastSnapshot?.index ?? 0,
			pendingApplies: this.pending.size,
			/** Snapshots received from a leader through InstallSnapshot. */
			snapshotsInstalled: this.counters.snapshotsInstalled,
			snapshotsSent: this.counters.snapshotsSent,
			snapshotChunksReceived: this.counters.snapshotChunksReceived,
			/** The snapshot this node restored when it started (0: none). */
			startSnapshotIndex: this.startSnapshotIndex,
			/** Messages of an older term received (answered with the current term, then dropped). */
			staleMessages: this.counters.staleMessages,
			/** Messages refused because their sender is not a server of the latest configuration. */
			refusedMessages: this.counters.refusedMessages,
			/** Log batches persisted (one fsync each on a durable store). */
			logWrites: this.counters.logWrites,
			/** Followers this leader found with their log lost, and replicated afresh. */
			progressResets: st?.progressResets ?? 0,
			peers: st?.progress ?? {},
			/** When each peer was last heard from (ms epoch); a peer never heard from is absent. */
			lastContact: Object.fromEntries(this.contact) as Record<string, number>,
		};
	}

	/**
	 * After shutdown: resolves once nothing of this server touches its stores any more (the batch
	 * being written and a background snapshot have finished), so they may be closed or handed to
	 * someone else (e.g. recoverCluster).
	 */
	async stopped(o: FutureOptions = {}): Promise<void> {
		if (!this.shut) throw new RaftError("stopped() is for after shutdown()", "ERR_NOT_SHUT_DOWN");
		const settle = async () => {
			for (;;) {
				const d = this.draining;
				const s = this.snapshotting;
				await Promise.allSettled([d, s]);
				if (d === this.draining && (this.snapshotting === undefined || this.snapshotting === s)) return;
			}
		};
		await this.withDeadline("waiting for the stores to be released", settle(), o, () => {});
	}

	/** Stop: fail every future, stop the clock and the transport. The signal bounds the wait. */
	async shutdown(o: FutureOptions = {}): Promise<void> {
		if (this.shut) return;
		this.shut = true;
		clearInterval(this.timer);
		for (const p of this.pending.values()) p.reject(new ShutdownError());
		for (const r of this.reads.values()) r.reject(new ShutdownError());
		for (const w of this.waiters) w.reject(new ShutdownError());
		this.pending.clear();
		this.reads.clear();
		this.waiters.clear();
		await this.withDeadline("shutdown", this.transport.stop(), o, () => {});
		this.emit("state", "shutdown");
	}
}
