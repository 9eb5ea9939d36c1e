// Every store access of the dispatcher, in one place: the typed ClusterStore (get/find by the
// tasks' nodeId index, versioned commits, change events). A different store means changing only this.
import type { AssignedNetwork } from "../../dispatch/index.ts";
import type { Service, Task } from "../../services/index.ts";
import type { ChangeEvent, ClusterStore, Node } from "../../store/index.ts";

export interface Versioned<T> {
	version: number;
	value: T;
}

export type DispatchChange =
	| { kind: "task"; id: string; task?: Task }
	| { kind: "network"; id: string }
	| { kind: "service"; id: string }
	| { kind: "node"; id: string }
	/** The state was replaced (snapshot): everything may have changed. */
	| { kind: "reset" };

export interface DispatchStore {
	isLeader(): boolean;
	/** The leader's id and IPv4:PORT, when known. */
	leader(): { id: string; addr: string } | undefined;
	node(id: string): Versioned<Node> | undefined;
	nodeIds(): string[];
	task(id: string): Versioned<Task> | undefined;
	tasksOf(nodeId: string): Task[];
	network(id: string): AssignedNetwork | undefined;
	/** Every network, task, service (the network views are built from them when a dispatcher starts). */
	networks(): AssignedNetwork[];
	tasks(): Task[];
	service(id: string): Service | undefined;
	services(): Service[];
	/** Calls `fn` for each change, synchronously as it is applied; returns the unsubscribe. */
	watch(fn: (c: DispatchChange) => void): () => void;
	/** One transaction of updates at the versions read; rejects with the store's error (ERR_VERSION_CONFLICT...). */
	updateTasks(updates: Array<{ id: string; version: number; value: Task }>, signal?: AbortSignal): Promise<void>;
	updateNode(id: string, version: number, value: Node, signal?: AbortSignal): Promise<void>;
	/** A secret's (opened) or config's data at a version; undefined when it is not kept (or cannot be opened). */
	fileData?(kind: "secret" | "config", id: string, version: number): Uint8Array | undefined;
}

/** Where the dispatcher gets secret and config data (agent/manager/secrets.ts opens secrets). */
export type FileSource = (kind: "secret" | "config", id: string, version: number) => Uint8Array | undefined;

const ipPort = (multiaddr: string) => {
	const m = /^\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(multiaddr);
	return m ? `${m[1]}:${m[2]}` : undefined;
};

export function clusterDispatchStore(store: ClusterStore, files?: FileSource): DispatchStore {
	const opts = (signal?: AbortSignal) => (signal ? { signal } : {});
	return {
		...(files ? { fileData: files } : {}),
		isLeader: () => store.isLeader(),
		leader() {
			const l = store.leader();
			if (!l) return undefined;
			const addr = store.get("nodes", l.id)?.value.addr ?? ipPort(l.address);
			return addr ? { id: l.id, addr } : undefined;
		},
		node: (id) => store.get("nodes", id),
		nodeIds: () => store.list("nodes").map((r) => r.id),
		task: (id) => store.get("tasks", id),
		tasksOf: (nodeId) => store.find("tasks", { by: "nodeId", value: nodeId }).map((r) => r.value),
		network: (id) => store.get("networks", id)?.value,
		networks: () => store.list("networks").map((r) => r.value),
		tasks: () => store.list("tasks").map((r) => r.value),
		service: (id) => store.get("services", id)?.value,
		services: () => store.list("services").map((r) => r.value),
		watch(fn) {
			const onChange = (ev: ChangeEvent) => {
				if (ev.table === "tasks")
					fn({ kind: "task", id: ev.id, ...(ev.action === "delete" ? {} : { task: ev.record.value }) });
				else if (ev.table === "networks") fn({ kind: "network", id: ev.id });
				else if (ev.table === "services") fn({ kind: "service", id: ev.id });
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
		async updateTasks(updates, signal) {
			await store.commit(
				updates.map((u) => ({ op: "update", table: "tasks", id: u.id, version: u.version, value: u.value })),
				opts(signal),
			);
		},
		async updateNode(id, version, value, signal) {
			await store.commit([{ op: "update", table: "nodes", id, version, value }], opts(signal));
		},
	};
}
