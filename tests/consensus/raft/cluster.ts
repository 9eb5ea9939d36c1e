// A real-shell cluster for tests: Raft instances over the in-memory network, with in-memory or
// durable stores, and a KV state machine.
import { pack, unpack } from "msgpackr";
import {
	defaultConfig,
	FileLogStore,
	FileSnapshotStore,
	FileStableStore,
	type FSM,
	type LogEntry,
	type LogStore,
	MemLogStore,
	MemNetwork,
	MemSnapshotStore,
	MemStableStore,
	Raft,
	type ServerConfig,
	type SnapshotStore,
	type StableStore,
} from "../../../consensus/index.ts";
import { waitFor } from "../../helpers/index.ts";

export class KvFsm implements FSM {
	map = new Map<string, string>();
	applied = 0;
	/** Tests: while set, apply() waits for it (and records the index it is held at). */
	gate: Promise<void> | undefined;
	heldAt = 0;
	apply(e: { index: number; data: Uint8Array }): number | Promise<number> {
		const run = () => {
			const { key, value } = unpack(e.data) as { key: string; value: string };
			this.map.set(key, value);
			this.applied++;
			return value.length;
		};
		if (!this.gate) return run();
		this.heldAt = e.index;
		return this.gate.then(run);
	}
	snapshot() {
		const data = pack([...this.map]);
		return { persist: (sink: { write(b: Uint8Array): Promise<void> }) => sink.write(data), release() {} };
	}
	restore(data: Uint8Array) {
		this.map = new Map(unpack(data) as Array<[string, string]>);
	}
}

export const put = (key: string, value: string) => pack({ key, value });

/** Counts storeLogs calls (one fsync each on a durable store) and the entries they carry. */
export class CountingLogStore implements LogStore {
	writes = 0;
	entries = 0;
	private readonly inner: LogStore;
	constructor(inner: LogStore) {
		this.inner = inner;
	}
	firstIndex() {
		return this.inner.firstIndex();
	}
	lastIndex() {
		return this.inner.lastIndex();
	}
	getLog(i: number) {
		return this.inner.getLog(i);
	}
	getLogs(lo: number, hi: number) {
		return this.inner.getLogs(lo, hi);
	}
	storeLogs(batch: readonly LogEntry[]) {
		this.writes++;
		this.entries += batch.length;
		return this.inner.storeLogs(batch);
	}
	deleteRange(min: number, max: number) {
		return this.inner.deleteRange(min, max);
	}
	close() {
		return this.inner.close();
	}
}

export interface TestNode {
	id: string;
	raft: Raft;
	fsm: KvFsm;
	logs: CountingLogStore;
	stable: StableStore;
	snaps: SnapshotStore;
}

export class TestCluster {
	readonly net = new MemNetwork();
	readonly nodes = new Map<string, TestNode>();
	private readonly dir: string | undefined;
	private readonly tweak: Partial<ReturnType<typeof defaultConfig>>;

	constructor(opts: { dir?: string; config?: Partial<ReturnType<typeof defaultConfig>> } = {}) {
		this.dir = opts.dir;
		this.tweak = opts.config ?? {};
	}

	async stores(id: string) {
		if (!this.dir)
			return {
				logs: new CountingLogStore(new MemLogStore()),
				stable: new MemStableStore(),
				snaps: new MemSnapshotStore(),
			};
		return {
			logs: new CountingLogStore(await FileLogStore.open({ dir: `${this.dir}/${id}/log` })),
			stable: await FileStableStore.open(`${this.dir}/${id}`),
			snaps: new FileSnapshotStore(`${this.dir}/${id}/snapshots`),
		};
	}

	async start(id: string, opts: { bootstrap?: ServerConfig[]; reuse?: boolean } = {}): Promise<TestNode> {
		const prev = this.nodes.get(id);
		const st = opts.reuse && prev && !this.dir ? prev : await this.stores(id);
		if (opts.bootstrap) await Raft.bootstrap(st.logs, st.stable, { servers: opts.bootstrap });
		const fsm = new KvFsm();
		const raft = new Raft(
			{ ...defaultConfig(id), tickMs: 10, heartbeatTicks: 1, electionTicks: 10, ...this.tweak },
			fsm,
			st.logs,
			st.stable,
			st.snaps,
			this.net.transport(id),
		);
		await raft.start();
		const node = { id, raft, fsm, logs: st.logs, stable: st.stable, snaps: st.snaps };
		this.nodes.set(id, node);
		return node;
	}

	async bootstrap(ids: string[]): Promise<void> {
		const servers = ids.map((id) => ({ id, address: id, suffrage: "voter" as const }));
		for (const id of ids) await this.start(id, { bootstrap: servers });
	}

	async stop(id: string): Promise<void> {
		const n = this.nodes.get(id);
		if (!n) return;
		await n.raft.shutdown();
		if (this.dir) await n.logs.close();
	}

	live(): TestNode[] {
		return [...this.nodes.values()].filter((n) => n.raft.state() !== "shutdown");
	}

	async leader(timeoutMs = 10_000): Promise<TestNode> {
		return waitFor(
			"a single leader",
			() => {
				const ls = this.live().filter((n) => n.raft.state() === "leader");
				return ls.length === 1 ? ls[0] : undefined;
			},
			{ timeoutMs },
		);
	}

	async converged(key: string, value: string, ids?: string[]): Promise<void> {
		await waitFor(
			`${key}=${value.length > 40 ? `${value.slice(0, 40)}…` : value} everywhere`,
			() => (ids ? ids.map((i) => this.nodes.get(i)!) : this.live()).every((n) => n.fsm.map.get(key) === value),
			{ timeoutMs: 10_000 },
		);
	}

	async shutdown(): Promise<void> {
		for (const id of this.nodes.keys()) await this.stop(id);
	}
}
