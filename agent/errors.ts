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

/** The joiner's view: the cluster refused; `reason` and `serverCode` are what the server said. */
export class JoinDeniedError extends AgentError {
	override name = "JoinDeniedError";
	readonly serverCode: string | undefined;
	constructor(reason: string, serverCode?: string) {
		super(`join refused by the cluster: ${reason}`, "ERR_JOIN_DENIED");
		this.serverCode = serverCode;
	}
}

/** The server's view: the join proof matches neither current secret (wrong, rotated or replayed). */
export class InvalidJoinProofError extends AgentError {
	override name = "InvalidJoinProofError";
	constructor(peer: string) {
		super(`join proof from ${peer} matches no current token (wrong, rotated out, or replayed)`, "ERR_JOIN_PROOF");
	}
}

/** A join proof without a fresh, unused challenge of this session. */
export class NoChallengeError extends AgentError {
	override name = "NoChallengeError";
	constructor(peer: string) {
		super(`no challenge outstanding for ${peer} (a proof answers one fresh challenge, once)`, "ERR_NO_CHALLENGE");
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
	constructor(protocol: string, supported?: string) {
		super(
			`unsupported protocol ${protocol}${supported ? ` (this node speaks ${supported})` : ""}`,
			"ERR_PROTOCOL_VERSION",
		);
	}
}

/** A stream sent nothing (or an incomplete frame) for too long: closed so it holds nothing. */
export class StreamIdleError extends AgentError {
	override name = "StreamIdleError";
	constructor(protocol: string, ms: number) {
		super(`${protocol}: no complete frame within ${ms} ms; stream closed`, "ERR_STREAM_IDLE");
	}
}

/** The stream ended in the middle of a frame. */
export class TruncatedFrameError extends AgentError {
	override name = "TruncatedFrameError";
	constructor(protocol: string, bytes: number) {
		super(`${protocol}: stream ended inside a frame (${bytes} bytes of it)`, "ERR_TRUNCATED_FRAME");
	}
}

/** A frame that is not a message of the protocol (wrong shape or type). */
export class BadMessageError extends AgentError {
	override name = "BadMessageError";
	constructor(protocol: string, why: string) {
		super(`${protocol}: ${why}`, "ERR_BAD_MESSAGE");
	}
}
