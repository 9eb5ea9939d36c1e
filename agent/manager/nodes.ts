// The `nodes` table: a node's record is written (through the leader) when it joins and removed
// by `node rm`; every manager derives its directory (the allow-list) from it, and workers fetch
// that directory with `nodes.list`.
import {
	type DirectoryEntry,
	type NodeDirectory,
	type NodeRecord,
	NodeRemoveRefusedError,
	validAddr,
	validPeerId,
} from "../nodes/index.ts";
import {
	type ClusterStore,
	type Node,
	NotFoundError,
	type StoredRecord,
	VersionConflictError,
} from "../store/index.ts";
import { AmbiguousNodeError, InvalidNodeUpdateError } from "./errors.ts";

/** The nodes table as directory entries (the store validated each record; ids must be peer ids). */
export function directoryEntries(store: ClusterStore): DirectoryEntry[] {
	return store
		.list("nodes")
		.flatMap(({ value: v }) =>
			validPeerId(v.id) && validAddr(v.addr) ? [{ id: v.id, role: v.role, addr: v.addr }] : [],
		);
}

/** Create or replace a node's record (a node that joins again keeps its id); runs on the leader. */
export async function registerNode(store: ClusterStore, rec: NodeRecord): Promise<number> {
	const cur = store.get("nodes", rec.id);
	const value = { ...cur?.value, ...rec, createdAt: cur?.value.createdAt ?? rec.createdAt };
	const { index } = await store.commit([
		cur
			? { op: "update", table: "nodes", id: rec.id, version: cur.version, value }
			: { op: "create", table: "nodes", id: rec.id, value },
	]);
	return index;
}

/**
 * A node's record follows its address (the node's own signed membership statement): only addr
 * changes; runs on the leader. Resolves with the Raft index, or undefined when nothing changed.
 */
export async function setNodeAddr(store: ClusterStore, id: string, addr: string): Promise<number | undefined> {
	if (!validAddr(addr))
		throw new InvalidNodeUpdateError(`addr must be IPv4:PORT, got ${JSON.stringify(addr).slice(0, 64)}`);
	const cur = store.get("nodes", id);
	if (!cur) throw new NotFoundError("node", id);
	if (cur.value.addr === addr) return undefined;
	const { index } = await store.commit([
		{ op: "update", table: "nodes", id, version: cur.version, value: { ...cur.value, addr } },
	]);
	return index;
}

/** Delete a node's record; runs on the leader. A Raft server is refused: it must stop voting first. */
export async function removeNode(store: ClusterStore, id: string): Promise<number> {
	if (!store.get("nodes", id)) throw new NotFoundError("node", id);
	if (store.configuration().servers.some((s) => s.id === id))
		throw new NodeRemoveRefusedError(id, "it is a manager (a Raft server); demote it first");
	const { index } = await store.commit([{ op: "delete", table: "nodes", id }]);
	return index;
}

/**
 * Keep `directory` equal to the store's nodes table. Its version is the Raft index of the last
 * change to the table (the same on every manager), so a worker asking twice learns "unchanged".
 * Before this manager's replica holds any node (a new manager catching up), the directory it got
 * with its join grant stays.
 */
export function followNodes(store: ClusterStore, directory: NodeDirectory): () => void {
	const sync = (version: number) => {
		const entries = directoryEntries(store);
		if (entries.length > 0) directory.set(entries, version);
	};
	const onChange = (ev: { table: string }) => {
		if (ev.table === "nodes") sync(store.appliedIndex());
	};
	const onRestored = () => sync(store.appliedIndex());
	store.on("change", onChange);
	store.on("restored", onRestored);
	sync(store.appliedIndex());
	return () => {
		store.off("change", onChange);
		store.off("restored", onRestored);
	};
}

/**
 * A node by id, hostname or unique id prefix (`self`: this manager's node). An exact id wins over
 * a hostname; a hostname two nodes share, or a prefix two ids share, is ambiguous.
 */
export function findNode(store: ClusterStore, ref: string): StoredRecord<Node> {
	const id = ref === "self" ? store.id : ref;
	const exact = store.get("nodes", id);
	if (exact) return exact;
	const all = store.list("nodes");
	const named = all.filter((n) => n.value.hostname === ref);
	const matches = named.length > 0 ? named : ref.length >= 3 ? all.filter((n) => n.id.startsWith(ref)) : [];
	if (matches.length === 1) return matches[0]!;
	if (matches.length > 1)
		throw new AmbiguousNodeError(
			ref,
			matches.map((n) => `${n.id.slice(0, 12)} (${n.value.hostname})`),
		);
	throw new NotFoundError("node", ref);
}

export interface NodeUpdate {
	availability?: "active" | "pause" | "drain";
	labelAdd: Record<string, string>;
	labelRm: string[];
}

const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

/** `node update`'s request, checked whole before it travels to the leader. */
export function parseNodeUpdate(raw: Record<string, unknown>): NodeUpdate {
	const { availability, labelAdd = {}, labelRm = [] } = raw;
	if (availability !== undefined && availability !== "active" && availability !== "pause" && availability !== "drain")
		throw new InvalidNodeUpdateError(
			`availability must be active, pause or drain, got ${JSON.stringify(availability)?.slice(0, 64)}`,
		);
	if (!labelAdd || typeof labelAdd !== "object" || Array.isArray(labelAdd))
		throw new InvalidNodeUpdateError("labelAdd must be an object of key: value");
	for (const [k, v] of Object.entries(labelAdd)) {
		if (!LABEL_KEY.test(k))
			throw new InvalidNodeUpdateError(`label key ${JSON.stringify(k).slice(0, 64)} is not valid`);
		if (typeof v !== "string" || v.length > 256)
			throw new InvalidNodeUpdateError(`label ${k} must be a string of at most 256 characters`);
	}
	if (!Array.isArray(labelRm) || labelRm.some((k) => typeof k !== "string" || !LABEL_KEY.test(k)))
		throw new InvalidNodeUpdateError("labelRm must be a list of label keys");
	return {
		...(availability !== undefined ? { availability } : {}),
		labelAdd: labelAdd as Record<string, string>,
		labelRm: labelRm as string[],
	};
}

/**
 * `node update` on the leader: availability and labels only; status and the rest stay. Retried
 * when the dispatcher wrote the record (status) meanwhile. Returns the Raft index.
 */
export async function updateNode(
	store: ClusterStore,
	ref: string,
	u: NodeUpdate,
): Promise<{ id: string; index: number }> {
	for (let attempt = 0; ; attempt++) {
		const cur = findNode(store, ref);
		const labels = { ...cur.value.labels, ...u.labelAdd };
		for (const k of u.labelRm) {
			if (!(k in cur.value.labels) && !(k in u.labelAdd))
				throw new InvalidNodeUpdateError(`node ${cur.value.hostname} has no label ${k} to remove`);
			delete labels[k];
		}
		if (Object.keys(labels).length > 64) throw new InvalidNodeUpdateError("a node has at most 64 labels");
		const value: Node = { ...cur.value, labels, availability: u.availability ?? cur.value.availability };
		try {
			const { index } = await store.commit([{ op: "update", table: "nodes", id: cur.id, version: cur.version, value }]);
			return { id: cur.id, index };
		} catch (err) {
			if (!(err instanceof VersionConflictError) || attempt >= 5) throw err;
		}
	}
}

export interface NodeInspect extends Node {
	/** The store version (Raft index) of the record. */
	version: number;
	managerStatus?: { leader: boolean; reachability: "reachable" | "unreachable"; addr: string };
}

/** A node's record as `node inspect` shows it: the record, its status, and its place among the voters. */
export function inspectNode(store: ClusterStore, n: StoredRecord<Node>): NodeInspect {
	const voter = store.configuration().servers.find((s) => s.id === n.id && s.suffrage === "voter");
	const leader = store.leader()?.id === n.id;
	return {
		...n.value,
		version: n.version,
		...(voter
			? {
					managerStatus: {
						leader,
						reachability: leader || n.value.status?.state === "ready" ? "reachable" : "unreachable",
						addr: n.value.addr,
					},
				}
			: {}),
	};
}
