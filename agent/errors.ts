// Named errors of the agent (host, join, control); membership has its own in membership/errors.ts.

export class AgentError extends Error {
	readonly code: string;
	override name = "AgentError";
	constructor(message: string, code = "ERR_AGENT") {
		super(message);
		this.code = code;
	}
}

export class NotAMemberPeerError extends AgentError {
	override name = "NotAMemberPeerError";
	constructor(peer: string, protocol: string) {
		super(`peer ${peer} is not a cluster member and may not use ${protocol}`, "ERR_NOT_A_MEMBER");
	}
}

export class InvalidTokenError extends AgentError {
	override name = "InvalidTokenError";
	constructor(why: string) {
		super(`invalid join token: ${why}`, "ERR_INVALID_TOKEN");
	}
}

/** The cluster we reached cannot prove it is the one the token names: nothing secret was sent. */
export class WrongClusterError extends AgentError {
	override name = "WrongClusterError";
	constructor(want: string, got: string) {
		super(
			`the cluster at that address has fingerprint ${got}, the token names ${want}; refusing to join`,
			"ERR_WRONG_CLUSTER",
		);
	}
}

export class JoinDeniedError extends AgentError {
	override name = "JoinDeniedError";
	constructor(reason: string) {
		super(`join refused by the cluster: ${reason}`, "ERR_JOIN_DENIED");
	}
}

export class RateLimitedError extends AgentError {
	override name = "RateLimitedError";
	constructor(peer: string) {
		super(`too many join attempts from ${peer}; try again later`, "ERR_RATE_LIMITED");
	}
}

export class ProtocolVersionError extends AgentError {
	override name = "ProtocolVersionError";
	constructor(protocol: string) {
		super(`unsupported protocol ${protocol}`, "ERR_PROTOCOL_VERSION");
	}
}
