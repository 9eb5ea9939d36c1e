// The orchestrator loop (leader only): whenever services, tasks or nodes change, and every second
// for timers (restart delays, down-node grace), it asks plan() what to write and commits it.
import type { ClusterStore, Op, StoreLogger } from "../../store/index.ts";
import { type LeaderComponent, reactiveLoop } from "../leader.ts";
import { type PlanNode, type PlanOp, type PlanOptions, plan } from "./plan.ts";

export { newTask, newTaskId, type PlanNode, type PlanOp, type PlanOptions, plan, type Versioned } from "./plan.ts";

export interface OrchestratorOptions {
	downGraceMs?: number;
	historyLimit?: number;
	globalFits?: PlanOptions["globalFits"];
	owns?: PlanOptions["owns"];
	/** Ops per transaction (default 200). */
	batch?: number;
}

/** Subscribe to store changes of some tables (for reactiveLoop). */
export function onTables(store: ClusterStore, tables: readonly string[]) {
	return (wake: () => void) => {
		const f = (ev: { table: string }) => {
			if (tables.includes(ev.table)) wake();
		};
		store.on("change", f);
		store.on("restored", wake);
		return () => {
			store.off("change", f);
			store.off("restored", wake);
		};
	};
}

/** Commit ops in batches; a batch refused (a concurrent write) is retried op by op, once. */
export async function commitOps(store: ClusterStore, ops: Op[], log: StoreLogger, batch = 200): Promise<number> {
	let done = 0;
	for (let i = 0; i < ops.length; i += batch) {
		const chunk = ops.slice(i, i + batch);
		try {
			await store.commit(chunk);
			done += chunk.length;
		} catch {
			for (const op of chunk) {
				try {
					await store.commit([op]);
					done++;
				} catch (err) {
					log.debug({ op: op.op, table: op.table, id: op.id, err: (err as Error).message }, "write skipped");
				}
			}
		}
	}
	return done;
}

export function planNodes(store: ClusterStore): PlanNode[] {
	return store.list("nodes").map(({ value: n }) => ({
		id: n.id,
		availability: n.availability,
		...(n.status?.state === "down" ? { down: { since: Date.parse(n.status.timestamp) || 0 } } : {}),
	}));
}

export const toStoreOps = (ops: PlanOp[]): Op[] =>
	ops.map((o) =>
		o.op === "create"
			? { op: "create", table: "tasks", id: o.task.id, value: o.task }
			: o.op === "update"
				? { op: "update", table: "tasks", id: o.id, version: o.version, value: o.task }
				: { op: "delete", table: "tasks", id: o.id, version: o.version },
	);

export class Orchestrator implements LeaderComponent {
	readonly name = "orchestrator";
	private readonly store: ClusterStore;
	private readonly log: StoreLogger;
	private readonly o: OrchestratorOptions;

	constructor(store: ClusterStore, log: StoreLogger, o: OrchestratorOptions = {}) {
		this.store = store;
		this.log = log;
		this.o = o;
	}

	run(signal: AbortSignal): Promise<void> {
		return reactiveLoop(
			signal,
			onTables(this.store, ["services", "tasks", "nodes"]),
			async () => {
				await this.pass();
			},
			1000,
		);
	}

	/** One decision round; returns how many writes it made. */
	async pass(): Promise<number> {
		const ops = plan(this.store.list("services"), this.store.list("tasks"), planNodes(this.store), {
			now: Date.now(),
			...(this.o.downGraceMs !== undefined ? { downGraceMs: this.o.downGraceMs } : {}),
			...(this.o.historyLimit !== undefined ? { historyLimit: this.o.historyLimit } : {}),
			...(this.o.globalFits ? { globalFits: this.o.globalFits } : {}),
			...(this.o.owns ? { owns: this.o.owns } : {}),
		});
		if (ops.length === 0) return 0;
		const n = await commitOps(this.store, toStoreOps(ops), this.log, this.o.batch);
		this.log.debug({ ops: ops.length, written: n }, "orchestrator pass");
		return n;
	}
}
