// Named errors of the manager (requests it refuses before anything is stored).
import { AgentError } from "../errors.ts";

export class InvalidNetworkSpecError extends AgentError {
	static override status = 400;
	override name = "InvalidNetworkSpecError";
	constructor(why: string) {
		super(`invalid network: ${why}`, "ERR_INVALID_NETWORK");
	}
}

export class BadManagerRequestError extends AgentError {
	static override status = 400;
	override name = "BadManagerRequestError";
	constructor(peer: string, why: string) {
		super(`bad request on /tsswarm/manager/1 from ${peer}: ${why}`, "ERR_BAD_REQUEST");
	}
}

/** A member that is not a manager (a worker) asked to change cluster state. */
export class NotManagerPeerError extends AgentError {
	static readonly code = "ERR_NOT_MANAGER_PEER";
	static override status = 409;
	override name = "NotManagerPeerError";
	constructor(peer: string, kind: string) {
		super(`peer ${peer} is not a manager and may not ask for ${kind}`, NotManagerPeerError.code);
	}
}

/** A service request that cannot be carried out as asked (unknown network, bad scale, ...). */
export class InvalidServiceRequestError extends AgentError {
	static override status = 400;
	override name = "InvalidServiceRequestError";
	constructor(why: string, code = "ERR_INVALID_SERVICE") {
		super(why, code);
	}
}

/** A `node update` that cannot be carried out as asked (availability, label keys). */
export class InvalidNodeUpdateError extends AgentError {
	static override status = 400;
	override name = "InvalidNodeUpdateError";
	constructor(why: string) {
		super(`invalid node update: ${why}`, "ERR_INVALID_NODE_UPDATE");
	}
}

/** A node reference (id, hostname or id prefix) that matches more than one node. */
export class AmbiguousNodeError extends AgentError {
	static override status = 400;
	override name = "AmbiguousNodeError";
	constructor(ref: string, matches: string[]) {
		super(`node ${ref} is ambiguous: it matches ${matches.join(", ")}`, "ERR_AMBIGUOUS_NODE");
	}
}

/** A secret or config request refused before anything is stored (name, data size, labels). Never holds the data. */
export class InvalidFileObjectError extends AgentError {
	static override status = 400;
	override name = "InvalidFileObjectError";
	constructor(kind: "secret" | "config", why: string) {
		super(`invalid ${kind}: ${why}`, kind === "secret" ? "ERR_INVALID_SECRET" : "ERR_INVALID_CONFIG");
	}
}

/** A secret or config that services use cannot be removed (Swarm's refusal, naming them). */
export class FileObjectInUseError extends AgentError {
	static override status = 409;
	override name = "FileObjectInUseError";
	constructor(kind: "secret" | "config", name: string, services: string[]) {
		super(
			`${kind} ${name} is in use by the following service${services.length > 1 ? "s" : ""}: ${services.join(", ")}`,
			kind === "secret" ? "ERR_SECRET_IN_USE" : "ERR_CONFIG_IN_USE",
		);
	}
}

/** Autolock needs the cluster secret, which this manager does not hold (it joined before the keyring). */
export class NoClusterSecretError extends AgentError {
	static override status = 409;
	override name = "NoClusterSecretError";
	constructor(what: string) {
		super(`${what} needs the cluster secret, and this manager holds none`, "ERR_NO_CLUSTER_SECRET");
	}
}

/** This manager cannot admit nodes or print tokens yet: it lacks the cluster secret or the store the join keys. */
export class NoJoinKeysError extends AgentError {
	static override status = 409;
	static readonly code = "ERR_NO_JOIN_KEYS";
	override name = "NoJoinKeysError";
	constructor(why: string) {
		super(`cannot issue join tokens or admit nodes here: ${why}`, NoJoinKeysError.code);
	}
}

/** The last Raft voter cannot hand its vote to anyone: leaving it loses the cluster state. */
export class LastManagerError extends AgentError {
	static readonly code = "ERR_LAST_MANAGER";
	static override status = 409;
	override name = "LastManagerError";
	constructor(why: string) {
		super(`this node is the cluster's last manager (${why})`, LastManagerError.code);
	}
}

/** A leaving manager could not hand its vote away (no leader, no quorum, the transfer timed out). */
export class VoteHandoffError extends AgentError {
	static readonly code = "ERR_VOTE_HANDOFF";
	static override status = 503;
	override name = "VoteHandoffError";
	constructor(why: string) {
		super(`cannot hand this manager's vote away: ${why}`, VoteHandoffError.code);
	}
}

/** A fence (agent/manager/fence.ts) this replica does not obey, and why. */
export class FenceRefusedError extends AgentError {
	static override status = 409;
	override name = "FenceRefusedError";
	constructor(why: string) {
		super(`fence refused: ${why}`, "ERR_FENCE_REFUSED");
	}
}
