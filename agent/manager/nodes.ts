// The `nodes` table: a node's record is written (through the leader) when it joins and removed
// by `node rm`; every manager derives its directory (the allow-list) from it, and workers fetch
// that directory with `nodes.list`.
import type { NodeDirectory } from "../nodes/index.ts";
import {
	type DirectoryEntry,
	type NodeRecord,
	NodeRemoveRefusedError,
	validAddr,
	validPeerId,
} from "../nodes/index.ts";
import { type ClusterStore, NotFoundError, type StoredRecord } from "../store/index.ts";

/** A stored record's directory entry, or undefined when the record is not one we can use. */
function entryOf(r: StoredRecord): DirectoryEntry | undefined {
	const v = r.value as Partial<NodeRecord>;
	if (!validPeerId(v.id) || v.id !== r.id || !validAddr(v.addr)) return undefined;
	if (v.role !== "manager" && v.role !== "worker") return undefined;
	return { id: v.id, role: v.role, addr: v.addr };
}

export function directoryEntries(store: ClusterStore): DirectoryEntry[] {
	return store.list("nodes").flatMap((r) => entryOf(r) ?? []);
}

/** Create or replace a node's record (a node that joins again keeps its id); runs on the leader. */
export async function registerNode(store: ClusterStore, rec: NodeRecord): Promise<number> {
	const cur = store.get("nodes", rec.id);
	const value = { ...rec, createdAt: (cur?.value.createdAt as string | undefined) ?? rec.createdAt };
	const { index } = await store.commit([
		cur
			? { op: "update", table: "nodes", id: rec.id, version: cur.version, value }
			: { op: "create", table: "nodes", id: rec.id, value },
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
