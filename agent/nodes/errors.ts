// Named errors of the node directory: what a joiner says about itself, and directory replies
// from managers, are checked before they are stored or trusted.
import { AgentError } from "../errors.ts";

/** A joiner's description of itself (hostname, address, platform, labels...) is malformed. */
export class InvalidNodeDescriptionError extends AgentError {
	static override status = 400;
	override name = "InvalidNodeDescriptionError";
	constructor(peer: string, why: string) {
		super(`node ${peer} described itself wrongly: ${why}`, "ERR_INVALID_NODE");
	}
}

/** A manager's answer to a directory request is malformed; the directory is left as it was. */
export class BadDirectoryReplyError extends AgentError {
	static override status = 502;
	override name = "BadDirectoryReplyError";
	constructor(peer: string, why: string) {
		super(`node directory from ${peer} refused: ${why}`, "ERR_BAD_DIRECTORY");
	}
}

/** `node rm` of a node that must not be removed as things are. */
export class NodeRemoveRefusedError extends AgentError {
	static override status = 409;
	override name = "NodeRemoveRefusedError";
	constructor(id: string, why: string) {
		super(`node ${id} cannot be removed: ${why}`, "ERR_NODE_REMOVE_REFUSED");
	}
}
