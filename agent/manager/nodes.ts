// The `nodes` table: a node's record is written (through the leader) when it joins and removed
// by `node rm`; every manager derives its directory (the allow-list) from it, and workers fetch
// that directory with `nodes.list`.
import {
	type DirectoryEntry,
	type NodeDirectory,
	type NodeRecord,
	NodeRemoveRefusedError,
	ROLE_PREFERENCES,
	type RolePreference,
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
	// A (re)join's token decides the role preference: the manager token pins manager, the worker one is auto.
	if (rec.desiredRole === undefined) delete value.desiredRole;
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

/** followNodes' handle: `inSync()` says the directory holds what the replica holds. */
export interface NodesFollower {
	/** The directory is the caught-up replica's nodes table (no change waits to be copied). */
	inSync(): boolean;
	/** Copy now if there is something to copy (the caller just applied a change it answers for). */
	flush(): void;
	stop(): void;
}

/**
 * Keep `directory` equal to the store's nodes table. Its version is the Raft index of the last
 * change to the table (the same on every manager), so a worker asking twice learns "unchanged".
 * Before this manager's replica holds any node (a new manager catching up), the directory it got
 * with its join grant stays.
 */
export function followNodes(store: ClusterStore, directory: NodeDirectory): NodesFollower {
	// A replica replaying its log (a manager just promoted), or one that installed an older
	// snapshot, passes through old tables: the directory follows only once it has caught up.
	let dirty = false;
	let nodesVersion = store.appliedIndex();
	const sync = () => {
		if (!store.caughtUp()) return;
		dirty = false;
		const entries = directoryEntries(store);
		if (entries.length > 0) directory.set(entries, nodesVersion);
	};
	// A change is emitted while its entry is being applied (the applied index moves after it):
	// sync right after, so that `node rm` has cut the node off by the time it answers.
	let soon = false;
	const syncSoon = () => {
		if (soon) return;
		soon = true;
		setImmediate(() => {
			soon = false;
			if (dirty) sync();
		});
	};
	const onChange = (ev: { table: string }) => {
		if (ev.table === "nodes") {
			dirty = true;
			nodesVersion = store.appliedIndex();
		}
		if (dirty) syncSoon();
	};
	const onRestored = () => {
		dirty = true;
		nodesVersion = store.appliedIndex();
		sync();
	};
	// Raft's applied index moved (a snapshot installed, a batch applied): what was not copied while
	// the replica lagged is copied once it has caught up, not at the next timer.
	const onApplied = () => {
		if (dirty) sync();
	};
	const timer = setInterval(() => dirty && sync(), 500);
	timer.unref();
	store.on("change", onChange);
	store.on("restored", onRestored);
	store.on("applied", onApplied);
	dirty = true;
	sync();
	return {
		inSync: () => !dirty && store.caughtUp(),
		flush: () => {
			if (dirty) sync();
		},
		stop: () => {
			clearInterval(timer);
			store.off("change", onChange);
			store.off("restored", onRestored);
			store.off("applied", onApplied);
		},
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
	/** `--role`, `node promote` (manager), `node demote` (worker): what autopilot may make of the node. */
	role?: RolePreference;
	labelAdd: Record<string, string>;
	labelRm: string[];
}

const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;

/** `node update`'s request, checked whole before it travels to the leader. */
export function parseNodeUpdate(raw: Record<string, unknown>): NodeUpdate {
	const { availability, role, labelAdd = {}, labelRm = [] } = raw;
	if (role !== undefined && !ROLE_PREFERENCES.includes(role as RolePreference))
		throw new InvalidNodeUpdateError(`role must be auto, manager or worker, got ${JSON.stringify(role)?.slice(0, 64)}`);
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
		...(role !== undefined ? { role: role as RolePreference } : {}),
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
		if (u.role !== undefined && u.role !== (cur.value.desiredRole ?? "auto")) {
			// Someone must be able to hold the quorum: refuse to pin the last possible manager to worker.
			if (u.role === "worker" && !store.list("nodes").some((n) => n.id !== cur.id && n.value.desiredRole !== "worker"))
				throw new InvalidNodeUpdateError(
					`node ${cur.value.hostname} is the last node that may be a manager; it cannot be pinned to the worker role`,
				);
			if (u.role === "auto") delete value.desiredRole;
			else value.desiredRole = u.role;
			value.roleReason = `role preference set to ${u.role} (node update)`;
		}
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
	/** The role preference (the record's desiredRole, absent there when auto). */
	rolePreference: RolePreference;
	/** Voters are reachable or not; a non-voter is catching up (autopilot promotes it once stable). */
	managerStatus?: { leader: boolean; reachability: "reachable" | "unreachable" | "catching up"; addr: string };
}

/** A node's record as `node inspect` shows it: the record, its status, and its place among the voters. */
export function inspectNode(store: ClusterStore, n: StoredRecord<Node>): NodeInspect {
	const server = store.configuration().servers.find((s) => s.id === n.id);
	const leader = store.leader()?.id === n.id;
	return {
		...n.value,
		version: n.version,
		rolePreference: n.value.desiredRole ?? "auto",
		...(server
			? {
					managerStatus: {
						leader,
						reachability:
							server.suffrage !== "voter"
								? "catching up"
								: leader || n.value.status?.state === "ready"
									? "reachable"
									: "unreachable",
						addr: n.value.addr,
					},
				}
			: {}),
	};
}
