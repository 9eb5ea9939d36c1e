// What the other managers' records say this node's role is: asked (nodes.list, as a worker's
// directory sync does) into a scratch directory. The managers asked are the directory's and every
// member gossip says is alive: a node back after all the managers it knew were replaced still
// finds the current ones (workers among them do not answer the manager protocol, and are skipped).
import type { Host } from "../host/index.ts";
import { type DirectoryEntry, DirectorySync, NodeDirectory, type NodeRole, type SyncLogger } from "../nodes/index.ts";

export interface ProbedRole {
	role: NodeRole | undefined;
	/** The directory the answering manager sent, and its version (for this node to adopt). */
	entries: DirectoryEntry[];
	version: number;
}

export async function probeRecordRole(o: {
	host: Host;
	directory: NodeDirectory;
	self: string;
	protocol: string;
	logger: SyncLogger;
	/** Members alive now (id, ip:port), asked too. */
	alive?: () => Array<{ id: string; addr: string }>;
}): Promise<ProbedRole | undefined> {
	const candidates = new Map<string, DirectoryEntry>();
	for (const e of o.directory.managers()) candidates.set(e.id, e);
	for (const m of o.alive?.() ?? [])
		if (!candidates.has(m.id)) candidates.set(m.id, { id: m.id, role: "manager", addr: m.addr });
	candidates.delete(o.self);
	const scratch = new NodeDirectory();
	scratch.set([...candidates.values()], 0, false);
	const sync = new DirectorySync({ host: o.host, directory: scratch, protocol: o.protocol, logger: o.logger });
	if (!(await sync.refresh())) return undefined;
	return { role: scratch.get(o.self)?.role, entries: scratch.list(), version: scratch.version };
}
