// The cluster store on a manager: the tables of store/state.ts replicated by raft-ts over the
// node's libp2p host (/tsswarm/raft/1), durable in DATA/raft. Reads are local (a follower may lag
// by a heartbeat); writes are transactions the leader proposes (see rpc.ts for forwarding).
import { EventEmitter } from "node:events";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Libp2p } from "@libp2p/interface";
import { pack } from "msgpackr";
import {
	type Configuration,
	defaultConfig,
	FileLogStore,
	FileSnapshotStore,
	FileStableStore,
	type FutureOptions,
	Libp2pTransport,
	NotLeaderError,
	Raft,
	type RaftConfig,
	type RecordCipher,
	type RecoveryResult,
	recoverCluster,
} from "../../consensus/index.ts";
import { NoLeaderError } from "./errors.ts";
import { StoreFSM } from "./fsm.ts";
import { validateTransaction } from "./state.ts";
import type { ChangeEvent, IndexedTable, IndexName, NamedTable, Op, RecordOf, Table, TxResult } from "./types.ts";
import type { WatchOptions, WatchSelector } from "./watch.ts";

export interface StoreLogger {
	info(obj: object, msg?: string): void;
	warn(obj: object, msg?: string): void;
	error(obj: object, msg?: string): void;
	debug(obj: object, msg?: string): void;
}

export interface ClusterStoreOptions {
	/** Directory for the Raft log, stable store and snapshots (DATA/raft). */
	dir: string;
	node: Libp2p;
	clusterId: string;
	logger: StoreLogger;
	raft?: Partial<Omit<RaftConfig, "localId" | "logger">>;
	/** Who may open Raft streams to this server (checked before a frame is read): managers. */
	authorize?: (peer: string) => boolean;
	/** How many changes watch() can replay after a reconnect (default 10,000). */
	watchHistory?: number;
	/** Seals the Raft log's entries and the snapshots on disk (the manager's data key). */
	cipher?: RecordCipher;
}

export interface StoreEvents {
	change: [ChangeEvent];
	/** The state was replaced by a snapshot (no change events for what it brought). */
	restored: [];
	/** Raft moved the applied index (after a batch of entries or a snapshot install). */
	applied: [index: number];
	leader: [{ id: string; term: number }];
}

export class ClusterStore extends EventEmitter<StoreEvents> {
	readonly id: string;
	readonly address: string;
	private readonly fsm: StoreFSM;
	private readonly raft: Raft;
	private readonly logs: FileLogStore;
	private readonly stable: FileStableStore;
	private readonly snaps: FileSnapshotStore;
	private readonly logger: StoreLogger;

	private constructor(o: ClusterStoreOptions, logs: FileLogStore, stable: FileStableStore) {
		super();
		this.fsm = new StoreFSM({ watchHistory: o.watchHistory });
		this.logs = logs;
		this.stable = stable;
		this.snaps = new FileSnapshotStore(join(o.dir, "snapshots"), 2, o.cipher ? { cipher: o.cipher } : {});
		// What a crash kept plain of a sealAtRest, or snapshots from before encryption at rest.
		if (o.cipher) this.snaps.seal(o.cipher);
		this.logger = o.logger;
		this.id = o.node.peerId.toString();
		const ma = o.node.getMultiaddrs()[0];
		this.address = ma ? ma.toString() : "";
		this.raft = new Raft(
			// Swarm-like edge defaults: 100 ms ticks, election after 1-2 s without a leader.
			{ ...defaultConfig(this.id), tickMs: 100, heartbeatTicks: 1, electionTicks: 10, ...o.raft, logger: o.logger },
			this.fsm,
			logs,
			stable,
			this.snaps,
			new Libp2pTransport({
				node: o.node,
				clusterId: o.clusterId,
				logger: o.logger,
				...(o.authorize ? { authorize: o.authorize } : {}),
			}),
		);
		this.fsm.on("change", (ev) => this.emit("change", ev));
		this.fsm.on("restored", () => this.emit("restored"));
		this.raft.on("applied", (index) => this.emit("applied", index));
		this.raft.on("leader", (l) => {
			o.logger.info({ leader: l.id, term: l.term }, "raft leader");
			this.emit("leader", l);
		});
	}

	static async open(o: ClusterStoreOptions): Promise<ClusterStore> {
		mkdirSync(o.dir, { recursive: true, mode: 0o700 });
		const logs = await FileLogStore.open({ dir: join(o.dir, "log"), ...(o.cipher ? { cipher: o.cipher } : {}) });
		// Plain records left by a sealAtRest a crash cut short (or from before encryption at rest):
		// rewritten sealed before Raft starts.
		if (o.cipher)
			await logs.seal(o.cipher).catch(async (err: unknown) => {
				await logs.close();
				throw err;
			});
		const stable = await FileStableStore.open(o.dir);
		return new ClusterStore(o, logs, stable);
	}

	/**
	 * Encryption at rest from now on, for a store opened without a cipher (a manager whose data key
	 * arrived after its replica started): every Raft entry and snapshot written after this is sealed,
	 * and the plain ones already on disk are rewritten sealed before it resolves (raft-ts seal();
	 * compaction would keep them: it drops whole segments behind the trailing entries). Give it the
	 * cipher only once its key is durable on disk, or the next start cannot open the files. A store
	 * opened with a cipher does the same at open, for what a crash kept plain. Another cipher than
	 * the one it has is refused (ERR_CIPHER_IN_USE).
	 */
	async sealAtRest(cipher: RecordCipher): Promise<void> {
		await this.logs.seal(cipher);
		this.snaps.seal(cipher);
	}

	/** Whether this replica's Raft log and snapshots are sealed (a cipher at open, or sealAtRest). */
	sealedAtRest(): boolean {
		return this.logs.sealed && this.snaps.sealed;
	}

	/** True when this server has no Raft state yet (a new manager waiting to be added). */
	async isEmpty(): Promise<boolean> {
		return (await this.logs.lastIndex()) === 0;
	}

	/** Make this server the only voter of a new cluster (tsswarm init). */
	async bootstrap(): Promise<void> {
		await Raft.bootstrap(this.logs, this.stable, {
			servers: [{ id: this.id, address: this.address, suffrage: "voter" }],
		});
	}

	/**
	 * Disaster recovery, before start (tsswarm init --force-new-cluster): this server becomes the
	 * only voter of its own state, every record kept (raft-ts recoverCluster, on this store's own
	 * log, stable and snapshot stores).
	 */
	recover(): Promise<RecoveryResult> {
		return recoverCluster(
			new StoreFSM(),
			this.logs,
			this.stable,
			this.snaps,
			{ servers: [{ id: this.id, address: this.address, suffrage: "voter" }] },
			{ logger: this.logger },
		);
	}

	start(signal?: AbortSignal): Promise<void> {
		return this.raft.start(signal);
	}

	/** Stop Raft, wait until it no longer writes, and close the stores (they may be reopened). */
	async stop(): Promise<void> {
		await this.raft.shutdown();
		await this.raft
			.stopped({ timeoutMs: 10_000 })
			.catch((err: Error) => this.logger.warn({ err: err.message }, "raft still busy with its stores at stop"));
		await this.logs.close();
		await this.stable.close();
	}

	isLeader(): boolean {
		return this.raft.state() === "leader";
	}

	leader(): { id: string; address: string } | undefined {
		return this.raft.leader();
	}

	configuration(): Configuration {
		return this.raft.configuration();
	}

	/**
	 * This replica has applied all that it knows committed, and all its leader said it committed:
	 * after installing an older snapshot its own commit index is the snapshot's, so that alone says
	 * nothing of the entries still on their way.
	 */
	caughtUp(): boolean {
		const st = this.raft.stats();
		return st.appliedIndex >= Math.max(st.commitIndex, st.leaderCommitIndex);
	}

	/** Raft's counters and state (term, commit and applied index, ...). */
	raftStats(): ReturnType<Raft["stats"]> {
		return this.raft.stats();
	}

	/** Resolves once some leader is known (this node or another), within timeoutMs. */
	waitForLeader(timeoutMs: number, signal?: AbortSignal): Promise<{ id: string; address: string }> {
		const now = this.leader();
		if (now) return Promise.resolve(now);
		return new Promise((resolve, reject) => {
			const done = () => {
				clearTimeout(timer);
				this.off("leader", onLeader);
				signal?.removeEventListener("abort", onAbort);
			};
			const onLeader = () => {
				const l = this.leader();
				if (l) {
					done();
					resolve(l);
				}
			};
			const onAbort = () => {
				done();
				reject(signal!.reason);
			};
			const timer = setTimeout(() => {
				done();
				reject(new NoLeaderError(`no leader elected within ${timeoutMs} ms; a majority of managers must be up`));
			}, timeoutMs);
			this.on("leader", onLeader);
			signal?.addEventListener("abort", onAbort, { once: true });
		});
	}

	/**
	 * The Raft index of the last entry applied here (during a change event: that change's). List,
	 * then watch({ ... }, { sinceVersion: appliedIndex() }) to miss nothing.
	 */
	appliedIndex(): number {
		return this.fsm.appliedIndex;
	}

	get<T extends Table>(table: T, id: string): RecordOf<T> | undefined {
		return this.fsm.state.get(table, id);
	}

	list<T extends Table>(table: T): RecordOf<T>[] {
		return this.fsm.state.list(table);
	}

	count(table: Table): number {
		return this.fsm.state.count(table);
	}

	byName<T extends NamedTable>(table: T, name: string): RecordOf<T> | undefined {
		return this.fsm.state.byName(table, name);
	}

	/** Records by a secondary index: find("tasks", { by: "nodeId", value: id }). */
	find<T extends IndexedTable>(table: T, q: { by: IndexName<T>; value: string }): RecordOf<T>[] {
		return this.fsm.state.find(table, q);
	}

	/**
	 * Changes as they are applied here, resumable from a version (see watch.ts): throws
	 * WatchCompactedError when that version is older than the kept history.
	 */
	watch<T extends Table = Table>(sel?: WatchSelector<T>, o?: WatchOptions): AsyncIterableIterator<ChangeEvent<T>> {
		return this.fsm.feed.watch(sel, o);
	}

	/**
	 * Everything committed (or proposed) before this call is applied here once it resolves, on a
	 * leader that a quorum still follows. Every write from the API starts with one: a Raft barrier
	 * entry would cost a log write and an fdatasync each (twice the flash wear per write,
	 * bench/disk-writes), so this is a ReadIndex (heartbeats, no disk) and a wait for the applied
	 * index to reach the log's end as it was at the call, which holds this leader's own no-op.
	 */
	async barrier(o: FutureOptions = {}): Promise<void> {
		const last = this.raft.stats().lastLogIndex;
		await this.raft.verifyLeader({ timeoutMs: 10_000, ...o });
		await this.raft.waitForApplied(last, { timeoutMs: 10_000, ...o });
	}

	/** Commit one transaction (on the leader); resolves with its Raft index and each op's version. */
	async commit(ops: Op[], o: FutureOptions = {}): Promise<{ index: number; versions: number[] }> {
		if (!this.isLeader()) throw new NotLeaderError(this.leader()?.id);
		validateTransaction({ ops }); // a malformed write is refused here, before a Raft round trip
		const { index, response } = await this.raft.apply(pack({ ops }), { timeoutMs: 10_000, ...o });
		const r = response as TxResult;
		if (!r.ok) throw r.error;
		return { index, versions: r.versions };
	}

	/** Resolves once this manager has applied `index` (read-your-writes after a forwarded write). */
	waitForApplied(index: number, o: FutureOptions = {}): Promise<void> {
		return this.raft.waitForApplied(index, { timeoutMs: 10_000, ...o });
	}

	addVoter(id: string, address: string, o: FutureOptions = {}): Promise<number> {
		return this.raft.addVoter(id, address, { timeoutMs: 30_000, ...o });
	}

	/** A server that receives the log but does not vote (autopilot's first step of a promotion). */
	addNonvoter(id: string, address: string, o: FutureOptions = {}): Promise<number> {
		return this.raft.addNonvoter(id, address, { timeoutMs: 30_000, ...o });
	}

	/** A voter keeps receiving the log but stops voting (the first step of a live demotion). */
	demoteVoter(id: string, o: FutureOptions = {}): Promise<number> {
		return this.raft.demoteVoter(id, { timeoutMs: 30_000, ...o });
	}

	/** Take a server out of the Raft configuration (leader only); resolves once that is committed. */
	removeServer(id: string, o: FutureOptions = {}): Promise<number> {
		return this.raft.removeServer(id, { timeoutMs: 30_000, ...o });
	}

	/** Hand leadership to another voter (leader only); resolves with the new leader's id. */
	leadershipTransfer(to?: string, o: FutureOptions = {}): Promise<string> {
		return this.raft.leadershipTransfer(to, o);
	}
}
