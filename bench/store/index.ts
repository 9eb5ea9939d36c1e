// bench/store: the cluster store's state machine holding 100,000 tasks. One-task updates and
// 100-task batches per second through StoreFSM.apply (decode + validate + apply + indexes + watch
// ring, what every manager runs per entry) and through a single-node in-memory Raft; the peer is
// "baseline: full-table copy, the pre-change algorithm" (copy each touched table per transaction),
// run here on the same decoded, validated entries. Last line: {"bench":"store","ours","peer","ratios"}.

import { parseArgs } from "node:util";
import { pack, unpack } from "msgpackr";
import { validateServiceSpec } from "../../agent/services/index.ts";
import { type Op, StoreFSM, type Task, type TxResult, validateTransaction } from "../../agent/store/index.ts";
import {
	defaultConfig,
	type LogEntry,
	MemLogStore,
	MemNetwork,
	MemSnapshotStore,
	MemStableStore,
	Raft,
} from "../../consensus/index.ts";
import { FullCopyBaseline } from "./full-copy.ts";

const { values } = parseArgs({
	options: { tasks: { type: "string", default: "100000" }, seconds: { type: "string", default: "2" } },
});
const TASKS = Number(values.tasks);
const SECONDS = Number(values.seconds);
const log = (m: string) => process.stderr.write(`[store] ${m}\n`);
const T0 = "2025-01-01T00:00:00.000Z";
const NODES = 50;
const SERVICES = 100;

const TEMPLATE = validateServiceSpec({
	name: "web",
	task: {
		container: { image: "registry.local/web:1.2.3", env: ["MODE=prod", "PORT=8080"] },
		placement: { constraints: ["node.labels.zone==a"] },
	},
}).task;

const taskValue = (i: number, gen: number): Task => ({
	id: `task${i}`,
	serviceId: `svc${i % SERVICES}`,
	serviceName: `svc${i % SERVICES}`,
	slot: 1 + Math.floor(i / SERVICES),
	nodeId: `node${(i + gen) % NODES}`,
	desiredState: gen % 2 === 0 ? "running" : "shutdown",
	status: {
		state: gen % 2 === 0 ? "running" : "shutdown",
		message: "started",
		timestamp: T0,
		containerId: `c${i}-${gen}`,
	},
	networks: [{ networkId: "net1", addresses: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/8`], aliases: [] }],
	spec: TEMPLATE,
	specVersion: 1,
	image: `registry.local/web@sha256:${"ab".repeat(32)}`,
	createdAt: T0,
});

/** Makes entries that update `perTx` tasks each, at consecutive indexes after `after`, versions tracked. */
function updater(perTx: number, after: number, version: Int32Array, gen: { n: number }) {
	let index = after;
	let next = 0;
	return (count: number): LogEntry[] => {
		const out: LogEntry[] = [];
		for (let e = 0; e < count; e++) {
			index++;
			const ops: Op[] = [];
			for (let k = 0; k < perTx; k++) {
				const i = (next++ * 7919) % TASKS; // spread over the table
				ops.push({ op: "update", table: "tasks", id: `task${i}`, version: version[i]!, value: taskValue(i, ++gen.n) });
				version[i] = index;
			}
			out.push({ index, term: 1, type: "command", data: pack({ ops }) });
		}
		return out;
	};
}

/**
 * Applies entries, made `chunk` at a time off the clock, for SECONDS of apply time (and at least
 * `atLeast` entries); returns
 * transactions per second and how many were applied.
 */
function rate(make: (n: number) => LogEntry[], chunk: number, apply: (e: LogEntry) => void, atLeast = 0) {
	const limit = SECONDS * 1000;
	let busy = 0;
	let n = 0;
	while (busy < limit || n < atLeast) {
		const entries = make(chunk);
		const start = performance.now();
		for (const e of entries) {
			apply(e);
			n++;
			if ((n & 7) === 0 && n >= atLeast && busy + performance.now() - start > limit) break;
		}
		busy += performance.now() - start;
	}
	return { perSec: n / (busy / 1000), n };
}

const round = (x: number) => Math.round(x * 10) / 10;

async function main() {
	// ---- ours: StoreFSM.apply ----
	const fsm = new StoreFSM();
	const version = new Int32Array(TASKS);
	let index = 0;
	const loadStart = performance.now();
	for (let i = 0; i < TASKS; i += 1000) {
		index++;
		const ops: Op[] = [];
		for (let k = i; k < Math.min(TASKS, i + 1000); k++) {
			ops.push({ op: "create", table: "tasks", id: `task${k}`, value: taskValue(k, 0) });
			version[k] = index;
		}
		const r = fsm.apply({ index, term: 1, type: "command", data: pack({ ops }) });
		if (!r.ok) throw new Error(`load failed: ${r.error.message}`);
	}
	const loadPerSec = TASKS / ((performance.now() - loadStart) / 1000);
	const loadedRss = process.memoryUsage().rss;
	log(`loaded ${fsm.state.count("tasks")} tasks (${Math.round(loadPerSec)} creates/s)`);
	const check = (e: LogEntry) => {
		const r = fsm.apply(e);
		if (!r.ok) throw new Error(`apply failed at ${e.index}: ${r.error.message}`);
	};
	const gen = { n: 0 };
	const savedVersions = version.slice();
	const one = rate(updater(1, index, version, gen), 20_000, check);
	// Entries made but not applied recorded their versions: take them from the store again.
	for (let i = 0; i < TASKS; i++) version[i] = fsm.state.get("tasks", `task${i}`)!.version;
	log(`ours apply: ${Math.round(one.perSec)} one-task updates/s (${one.n})`);
	const batch = rate(updater(100, fsm.appliedIndex, version, gen), 500, check);
	log(`ours apply: ${Math.round(batch.perSec)} 100-task batches/s (${batch.n})`);
	const byNode = performance.now();
	let found = 0;
	for (let n = 0; n < NODES; n++) found += fsm.state.find("tasks", { by: "nodeId", value: `node${n}` }).length;
	const findMs = (performance.now() - byNode) / NODES;
	if (found !== TASKS) throw new Error(`index covers ${found} of ${TASKS} tasks`);

	// ---- ours through a one-node in-memory Raft ----
	const raftFsm = new StoreFSM();
	const logs = new MemLogStore();
	const stable = new MemStableStore();
	await Raft.bootstrap(logs, stable, { servers: [{ id: "n1", address: "n1", suffrage: "voter" }] });
	const raft = new Raft(
		// No snapshots during the run: a snapshot of 100,000 tasks is its own cost, not an apply's.
		{ ...defaultConfig("n1"), tickMs: 10, snapshotThreshold: 1e9 },
		raftFsm,
		logs,
		stable,
		new MemSnapshotStore(),
		new MemNetwork().transport("n1"),
	);
	const leader = new Promise<void>((ok) => raft.once("leader", () => ok()));
	await raft.start();
	await leader;
	const commit = async (ops: Op[]) => {
		const { response } = await raft.apply(pack({ ops }), { timeoutMs: 30_000 });
		const r = response as TxResult;
		if (!r.ok) throw new Error(`raft apply failed: ${r.error.message}`);
	};
	for (let i = 0; i < TASKS; i += 1000) {
		const ops: Op[] = [];
		for (let k = i; k < Math.min(TASKS, i + 1000); k++)
			ops.push({ op: "create", table: "tasks", id: `task${k}`, value: taskValue(k, 0) });
		await commit(ops);
	}
	const viaRaft = async (perTx: number) => {
		let cursor = 0;
		let n = 0;
		const start = performance.now();
		const until = start + SECONDS * 1000;
		await Promise.all(
			// In flight at once: 64, or fewer when that many would touch a task twice.
			Array.from({ length: Math.max(1, Math.min(64, Math.floor(TASKS / (perTx * 2)))) }, async () => {
				while (performance.now() < until) {
					const ops: Op[] = [];
					for (let k = 0; k < perTx; k++) {
						const i = (cursor++ * 7919) % TASKS;
						const cur = raftFsm.state.get("tasks", `task${i}`)!;
						ops.push({ op: "update", table: "tasks", id: cur.id, version: cur.version, value: taskValue(i, ++gen.n) });
					}
					await commit(ops);
					n++;
				}
			}),
		);
		return n / ((performance.now() - start) / 1000);
	};
	const raftOne = await viaRaft(1);
	log(`ours raft: ${Math.round(raftOne)} one-task updates/s`);
	const raftBatch = await viaRaft(100);
	log(`ours raft: ${Math.round(raftBatch)} 100-task batches/s`);
	await raft.shutdown();

	// ---- baseline: full-table copy, the pre-change algorithm ----
	const base = new FullCopyBaseline();
	const loaded = base.tables.get("tasks")!;
	for (let i = 0; i < TASKS; i++)
		loaded.set(`task${i}`, { id: `task${i}`, version: savedVersions[i]!, createdIndex: 1, value: taskValue(i, 0) });
	const baseApply = (e: LogEntry) => {
		// The same entry path as the FSM: decode, validate, then the old apply.
		const err = base.apply(validateTransaction(unpack(e.data)).ops, e.index);
		if (err) throw new Error(`baseline apply failed at ${e.index}: ${err}`);
	};
	const bVersion = savedVersions.slice();
	const bOne = rate(updater(1, 1_000_000, bVersion, gen), 8, baseApply, 24);
	log(`baseline apply: ${Math.round(bOne.perSec)} one-task updates/s (${bOne.n})`);
	for (const [id, r] of base.tables.get("tasks")!) bVersion[Number(id.slice(4))] = r.version;
	const bBatch = rate(updater(100, 2_000_000, bVersion, gen), 8, baseApply, 24);
	log(`baseline apply: ${Math.round(bBatch.perSec)} 100-task batches/s (${bBatch.n})`);

	const ours = {
		tasks: TASKS,
		applyOneTaskUpdatesPerSec: round(one.perSec),
		applyBatch100PerSec: round(batch.perSec),
		applyBatch100TaskUpdatesPerSec: round(batch.perSec * 100),
		raftOneTaskUpdatesPerSec: round(raftOne),
		raftBatch100PerSec: round(raftBatch),
		loadCreatesPerSec: round(loadPerSec),
		findTasksByNodeMs: Math.round(findMs * 1000) / 1000,
		/** The process with the 100,000 tasks loaded once (before the Raft and baseline copies). */
		rssAfterLoadMB: Math.round(loadedRss / 2 ** 20),
	};
	const peer = {
		name: "baseline: full-table copy, the pre-change algorithm",
		tasks: TASKS,
		applyOneTaskUpdatesPerSec: round(bOne.perSec),
		applyBatch100PerSec: round(bBatch.perSec),
	};
	const ratios = {
		applyOneTaskUpdates: round(one.perSec / bOne.perSec),
		applyBatch100: round(batch.perSec / bBatch.perSec),
	};
	console.log(JSON.stringify({ bench: "store", ours, peer, ratios }));
}

await main();
