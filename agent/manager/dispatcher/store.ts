// Every store access of the dispatcher, in one place: today's ClusterStore (list/get/commit and
// change events). When the store gets typed objects, a by-node index and watch(), only this changes.
import type { AssignedNetwork } from "../../dispatch/index.ts";
import type { NodeRecord } from "../../nodes/index.ts";
import type { Task } from "../../services/index.ts";
import type { ClusterStore, Op } from "../../store/index.ts";

export interface Versioned<T> {
	version: number;
	value: T;
}

export type DispatchChange =
	| { kind: "task"; id: string; task?: Task }
	| { kind: "network"; id: string; network?: AssignedNetwork }
	| { kind: "node"; id: string }
	/** The state was replaced (snapshot): everything may have changed. */
	| { kind: "reset" };

export interface DispatchStore {
	isLeader(): boolean;
	/** The leader's id and IPv4:PORT, when known. */
	leader(): { id: string; addr: string } | undefined;
	node(id: string): Versioned<NodeRecord> | undefined;
	nodeIds(): string[];
	task(id: string): Versioned<Task> | undefined;
	tasksOf(nodeId: string): Task[];
	network(id: string): AssignedNetwork | undefined;
	/** Calls `fn` for each change, synchronously as it is applied; returns the unsubscribe. */
	watch(fn: (c: DispatchChange) => void): () => void;
	/** One transaction of updates at the versions read; rejects with the store's error (ERR_VERSION_CONFLICT...). */
	updateTasks(updates: Array<{ id: string; version: number; value: Task }>, signal?: AbortSignal): Promise<void>;
	updateNode(id: string, version: number, value: NodeRecord, signal?: AbortSignal): Promise<void>;
}

const asRecord = (v: object) => v as unknown as Record<string, unknown>;
const ipPort = (multiaddr: string) => {
	const m = /^\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(multiaddr);
	return m ? `${m[1]}:${m[2]}` : undefined;
};

export function clusterDispatchStore(store: ClusterStore): DispatchStore {
	const commit = (ops: Op[], signal?: AbortSignal) => store.commit(ops, signal ? { signal } : {}).then(() => {});
	return {
		isLeader: () => store.isLeader(),
		leader() {
			const l = store.leader();
			if (!l) return undefined;
			const rec = store.get("nodes", l.id)?.value as Partial<NodeRecord> | undefined;
			const addr = typeof rec?.addr === "string" ? rec.addr : ipPort(l.address);
			return addr ? { id: l.id, addr } : undefined;
		},
		node(id) {
			const r = store.get("nodes", id);
			return r ? { version: r.version, value: r.value as unknown as NodeRecord } : undefined;
		},
		nodeIds: () => store.list("nodes").map((r) => r.id),
		task(id) {
			const r = store.get("tasks", id);
			return r ? { version: r.version, value: r.value as unknown as Task } : undefined;
		},
		// A scan today; the store rewrite brings a by-node index.
		tasksOf: (nodeId) =>
			store
				.list("tasks")
				.map((r) => r.value as unknown as Task)
				.filter((t) => t.nodeId === nodeId),
		network(id) {
			const r = store.get("networks", id);
			return r ? ({ ...r.value, id: r.id } as AssignedNetwork) : undefined;
		},
		watch(fn) {
			const onChange = (ev: { table: string; action: string; id: string; record: { value: object } }) => {
				const gone = ev.action === "delete";
				if (ev.table === "tasks")
					fn({ kind: "task", id: ev.id, ...(gone ? {} : { task: ev.record.value as unknown as Task }) });
				else if (ev.table === "networks")
					fn({
						kind: "network",
						id: ev.id,
						...(gone ? {} : { network: { ...ev.record.value, id: ev.id } as AssignedNetwork }),
					});
				else if (ev.table === "nodes") fn({ kind: "node", id: ev.id });
			};
			const onRestored = () => fn({ kind: "reset" });
			store.on("change", onChange);
			store.on("restored", onRestored);
			return () => {
				store.off("change", onChange);
				store.off("restored", onRestored);
			};
		},
		updateTasks: (updates, signal) =>
			commit(
				updates.map((u) => ({ op: "update", table: "tasks", id: u.id, version: u.version, value: asRecord(u.value) })),
				signal,
			),
		updateNode: (id, version, value, signal) =>
			commit([{ op: "update", table: "nodes", id, version, value: asRecord(value) }], signal),
	};
}
