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
import { type ClusterStore, NotFoundError } from "../store/index.ts";

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
