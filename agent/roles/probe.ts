// What the other managers' records say this node's role is: asked (nodes.list, as a worker's
// directory sync does) into a scratch directory, so this node's own directory stays as it is.
import type { Host } from "../host/index.ts";
import { DirectorySync, NodeDirectory, type NodeRole, type SyncLogger } from "../nodes/index.ts";

export async function probeRecordRole(o: {
	host: Host;
	directory: NodeDirectory;
	self: string;
	protocol: string;
	logger: SyncLogger;
}): Promise<NodeRole | undefined> {
	const scratch = new NodeDirectory();
	scratch.set(
		o.directory.list().filter((e) => e.id !== o.self),
		0,
		false,
	);
	const sync = new DirectorySync({ host: o.host, directory: scratch, protocol: o.protocol, logger: o.logger });
	if (!(await sync.refresh())) return undefined;
	return scratch.get(o.self)?.role;
}
