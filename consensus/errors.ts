// Named errors of raft-ts, each with a stable `code` callers can switch on.

export class RaftError extends Error {
	readonly code: string;
	override name = "RaftError";
	constructor(message: string, code = "ERR_RAFT", options?: ErrorOptions) {
		super(message, options);
		this.code = code;
	}
}

/** The operation needs the leader; `leader` names it when known, so callers can redirect. */
export class NotLeaderError extends RaftError {
	override name = "NotLeaderError";
	readonly leader: string | undefined;
	constructor(leader: string | undefined) {
		super(leader ? `not the leader (the leader is ${leader})` : "not the leader (no leader known)", "ERR_NOT_LEADER");
		this.leader = leader;
	}
}

/** This node stopped being leader before the operation was known to be committed; its fate is unknown. */
export class LeadershipLostError extends RaftError {
	override name = "LeadershipLostError";
	constructor() {
		super("leadership lost while the operation was in flight", "ERR_LEADERSHIP_LOST");
	}
}

export class LeadershipTransferInProgressError extends RaftError {
	override name = "LeadershipTransferInProgressError";
	constructor() {
		super("a leadership transfer is in progress", "ERR_LEADERSHIP_TRANSFER");
	}
}

export class ConfigChangePendingError extends RaftError {
	override name = "ConfigChangePendingError";
	constructor(why = "a configuration change is still uncommitted") {
		super(`${why}; wait for it first`, "ERR_CONFIG_PENDING");
	}
}

export class ShutdownError extends RaftError {
	override name = "ShutdownError";
	constructor() {
		super("raft is shut down", "ERR_SHUTDOWN");
	}
}

export class RaftTimeoutError extends RaftError {
	override name = "RaftTimeoutError";
	constructor(what: string, ms: number) {
		super(`${what} timed out after ${ms} ms`, "ERR_TIMEOUT");
	}
}

export class BadConfigError extends RaftError {
	override name = "BadConfigError";
	constructor(message: string) {
		super(message, "ERR_BAD_CONFIG");
	}
}

/** A message failed validation (wrong shape, bounds, or another cluster); it is dropped, never applied. */
export class InvalidMessageError extends RaftError {
	override name = "InvalidMessageError";
	constructor(message: string) {
		super(message, "ERR_INVALID_MESSAGE");
	}
}

export class WrongClusterError extends RaftError {
	override name = "WrongClusterError";
	constructor(got: string, want: string) {
		super(`message from cluster "${got}", this is cluster "${want}"`, "ERR_WRONG_CLUSTER");
	}
}

export class UnknownServerError extends RaftError {
	override name = "UnknownServerError";
	constructor(id: string) {
		super(`server ${id} is not in the configuration`, "ERR_UNKNOWN_SERVER");
	}
}

/** A message from an older term: Raft answers it with the current term (so a stale leader steps down) and drops it. */
export class StaleTermError extends RaftError {
	override name = "StaleTermError";
	readonly term: number;
	readonly current: number;
	constructor(type: string, term: number, current: number) {
		super(`${type} of term ${term}, the current term is ${current}`, "ERR_STALE_TERM");
		this.term = term;
		this.current = current;
	}
}

/** A Raft message from a server that is not in the latest configuration: refused before any term logic. */
export class NonMemberError extends RaftError {
	static readonly code = "ERR_NOT_A_MEMBER";
	override name = "NonMemberError";
	readonly peer: string;
	readonly type: string;
	constructor(peer: string, type: string, term: number) {
		super(`${type} of term ${term} from ${peer}, which is not a server of the configuration`, NonMemberError.code);
		this.peer = peer;
		this.type = type;
	}
}

/** The transport's authorize hook refused a peer: its stream is reset before anything is decoded. */
export class UnauthorizedPeerError extends RaftError {
	static readonly code = "ERR_UNAUTHORIZED_PEER";
	override name = "UnauthorizedPeerError";
	readonly peer: string;
	readonly protocol: string;
	constructor(peer: string, protocol: string) {
		super(`peer ${peer} may not use ${protocol}`, UnauthorizedPeerError.code);
		this.peer = peer;
		this.protocol = protocol;
	}
}

/**
 * Disaster recovery refused: this server holds no Raft state (no log, no term, no snapshot), or
 * what it holds cannot be read whole. Nothing was changed.
 */
export class RecoveryRefusedError extends RaftError {
	static readonly code = "ERR_RECOVERY_REFUSED";
	override name = "RecoveryRefusedError";
	constructor(why: string) {
		super(`refusing to recover the cluster: ${why}`, RecoveryRefusedError.code);
	}
}
