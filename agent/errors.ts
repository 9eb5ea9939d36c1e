// Named errors of the agent (host, join, control); membership has its own in membership/errors.ts.
// Each class carries the HTTP status the local API answers it with (a static `status`), so the
// API maps errors by class, never by message or code string.
import {
	ConfigChangePendingError,
	LeadershipLostError,
	LeadershipTransferInProgressError,
	NotLeaderError,
	RaftError,
	RaftTimeoutError,
	ShutdownError,
} from "../consensus/index.ts";
import {
	EncryptionUnsupportedError,
	InvalidCidrError,
	InvalidPortError,
	InvalidPublishError,
	NetworkExistsError,
	NetworkInUseError,
	NetworkNotFoundError,
	OverlayError,
	PoolExhaustedError,
	PortConflictError,
	SubnetOverlapError,
} from "../overlay-net/ipam/index.ts";

export class AgentError extends Error {
	/** The local API's HTTP status for this class; 500 means the agent's own failure. */
	static status = 500;
	readonly code: string;
	override name = "AgentError";
	constructor(message: string, code = "ERR_AGENT") {
		super(message);
		this.code = code;
	}
	/** This error's HTTP status: its class's. */
	get status(): number {
		return (this.constructor as typeof AgentError).status;
	}
}

/** The request itself is wrong (a flag, a field, an address): 400. */
export class UsageError extends AgentError {
	static override status = 400;
	override name = "UsageError";
	constructor(message: string, code = "ERR_USAGE") {
		super(message, code);
	}
}

/** The request conflicts with this node's or the cluster's state (already exists, not in a cluster): 409. */
export class ConflictError extends AgentError {
	static override status = 409;
	override name = "ConflictError";
}

export class NotInClusterError extends ConflictError {
	override name = "NotInClusterError";
	constructor() {
		super("this node is not in a cluster (tsswarm init or tsswarm join)", "ERR_NOT_IN_CLUSTER");
	}
}

/** A manager's replica does not follow a leader, or has not applied what it committed (after a restart). */
export class ReplicaNotReadyError extends AgentError {
	static override status = 503;
	override name = "ReplicaNotReadyError";
	constructor(why: string) {
		super(`this manager's replica is not current: ${why}; try again, or ask another manager`, "ERR_REPLICA_NOT_READY");
	}
}

export class AlreadyInClusterError extends ConflictError {
	override name = "AlreadyInClusterError";
	constructor(clusterId: string) {
		super(`this node is already in cluster ${clusterId}`, "ERR_ALREADY_IN_CLUSTER");
	}
}

/** The local API has no such route (method + path): 404. */
export class NoSuchRouteError extends AgentError {
	static override status = 404;
	override name = "NoSuchRouteError";
	constructor(method: string, path: string) {
		super(`no such endpoint ${method} ${path}`, "ERR_NO_SUCH_ROUTE");
	}
}

/** A local API request body that is not a JSON object: 400. */
export class InvalidBodyError extends AgentError {
	static override status = 400;
	override name = "InvalidBodyError";
	constructor(why: string) {
		super(`request body is not a JSON object: ${why}`, "ERR_INVALID_BODY");
	}
}

/** A local API request whose body or query has a field that is unknown, missing or of the wrong kind: 400. */
export class InvalidRequestError extends AgentError {
	static override status = 400;
	override name = "InvalidRequestError";
	/** The field's path ("labels.zone", "[2]"). */
	readonly field: string;
	constructor(message: string, field: string) {
		super(message, "ERR_INVALID_REQUEST");
		this.field = field;
	}
}

/** A local API request body over the bound; the server stopped reading at the bound: 413. */
export class BodyTooLargeError extends AgentError {
	static override status = 413;
	override name = "BodyTooLargeError";
	constructor(max: number) {
		super(`request body is larger than ${max} bytes`, "ERR_BODY_TOO_LARGE");
	}
}

/** The local API's socket directory exists but is not ours alone (wrong owner or not a directory). */
export class SocketDirError extends AgentError {
	override name = "SocketDirError";
	constructor(dir: string, why: string) {
		super(`refusing to serve the local API in ${dir}: ${why}`, "ERR_SOCKET_DIR");
	}
}

/**
 * What the CLI gets back from the local API: the agent's `code` and message, its HTTP status, and
 * the exit code the CLI should end with (2 for a usage error the agent caught, else 1).
 */
export class ApiError extends AgentError {
	override name = "ApiError";
	readonly httpStatus: number | undefined;
	constructor(message: string, code: string, httpStatus?: number) {
		super(message, code);
		this.httpStatus = httpStatus;
	}
	override get status(): number {
		return this.httpStatus ?? 500;
	}
	get exitCode(): number {
		return this.code === "ERR_USAGE" ? 2 : 1;
	}
}

/** Raft's "not now" errors (no leader, leadership moving, shutting down, timed out). */
const RAFT_UNAVAILABLE = [
	NotLeaderError,
	LeadershipLostError,
	LeadershipTransferInProgressError,
	ShutdownError,
	RaftTimeoutError,
];

/** The classes of modules that import nothing of tsswarm (so carry no status), by what they mean here. */
const FOREIGN: Array<[number, Array<abstract new (...a: never[]) => Error>]> = [
	[400, [InvalidCidrError, InvalidPortError, InvalidPublishError, EncryptionUnsupportedError]],
	[404, [NetworkNotFoundError]],
	[
		409,
		[
			ConfigChangePendingError,
			SubnetOverlapError,
			NetworkExistsError,
			NetworkInUseError,
			PortConflictError,
			PoolExhaustedError,
		],
	],
	[503, RAFT_UNAVAILABLE],
];

/**
 * The HTTP status for any thrown value, by class: an AgentError's class status; consensus and
 * overlay-net errors by what they mean; anything else 500 (a bug, not the caller's fault).
 */
export function statusOf(err: unknown): number {
	if (err instanceof AgentError) return err.status;
	for (const [status, classes] of FOREIGN) if (classes.some((C) => err instanceof C)) return status;
	return 500;
}

/**
 * Whether `err` is one of tsswarm's named errors (a stable code, a message meant for users), which
 * the API passes on as it is; anything else is a bug, answered generically and logged.
 */
export const isNamedError = (err: unknown): err is Error & { code: string } =>
	err instanceof AgentError || err instanceof RaftError || err instanceof OverlayError;

export class NotAMemberPeerError extends AgentError {
	static override status = 403;
	override name = "NotAMemberPeerError";
	constructor(peer: string, protocol: string) {
		super(`peer ${peer} is not a cluster member and may not use ${protocol}`, "ERR_NOT_A_MEMBER");
	}
}

export class InvalidTokenError extends AgentError {
	static override status = 400;
	override name = "InvalidTokenError";
	constructor(why: string) {
		super(`invalid join token: ${why}`, "ERR_INVALID_TOKEN");
	}
}

/** The cluster we reached cannot prove it is the one the token names: nothing secret was sent. */
export class WrongClusterError extends AgentError {
	static override status = 400;
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
	static override status = 403;
	override name = "JoinDeniedError";
	readonly serverCode: string | undefined;
	constructor(reason: string, serverCode?: string) {
		super(`join refused by the cluster: ${reason}`, "ERR_JOIN_DENIED");
		this.serverCode = serverCode;
	}
}

/** The server's view: the join proof matches neither current secret (wrong, rotated or replayed). */
export class InvalidJoinProofError extends AgentError {
	static override status = 403;
	override name = "InvalidJoinProofError";
	constructor(peer: string) {
		super(`join proof from ${peer} matches no current token (wrong, rotated out, or replayed)`, "ERR_JOIN_PROOF");
	}
}

/** A join proof without a fresh, unused challenge of this session. */
export class NoChallengeError extends AgentError {
	static override status = 400;
	override name = "NoChallengeError";
	constructor(peer: string) {
		super(`no challenge outstanding for ${peer} (a proof answers one fresh challenge, once)`, "ERR_NO_CHALLENGE");
	}
}

export class RateLimitedError extends AgentError {
	static override status = 429;
	override name = "RateLimitedError";
	constructor(peer: string) {
		super(`too many join attempts from ${peer}; try again later`, "ERR_RATE_LIMITED");
	}
}

/** Too many join attempts from all peers together (peer ids cost nothing, so per peer is not enough). */
export class JoinRateLimitedError extends AgentError {
	static override status = 429;
	override name = "JoinRateLimitedError";
	constructor(burst: number, everyMs: number) {
		super(
			`too many join attempts from all peers (more than ${burst} at once, one per ${everyMs} ms after that); try again later`,
			"ERR_JOIN_RATE_LIMITED",
		);
	}
}

/**
 * The server showed the cluster key the token names but its signature over this session is invalid
 * (a relayed or forged challenge: a man in the middle). The joiner stops: no proof was sent.
 */
export class ClusterSignatureError extends AgentError {
	static override status = 502;
	override name = "ClusterSignatureError";
	constructor(peer: string, fp: string) {
		super(
			`${peer} presents cluster key ${fp} but its signature over this session is invalid (a relay or forgery?); refusing to join`,
			"ERR_CLUSTER_SIGNATURE",
		);
	}
}

/** The join server's challenge or welcome is not one (garbage, missing fields, wrong types). */
export class MalformedJoinReplyError extends AgentError {
	static override status = 502;
	override name = "MalformedJoinReplyError";
	constructor(peer: string, what: "challenge" | "welcome", why: string) {
		super(`malformed ${what} from ${peer} on /tsswarm/join/1: ${why}`, "ERR_BAD_JOIN_REPLY");
	}
}

export class ProtocolVersionError extends AgentError {
	static override status = 400;
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
	static override status = 504;
	override name = "StreamIdleError";
	constructor(protocol: string, ms: number) {
		super(`${protocol}: no complete frame within ${ms} ms; stream closed`, "ERR_STREAM_IDLE");
	}
}

/** The stream ended in the middle of a frame. */
export class TruncatedFrameError extends AgentError {
	static override status = 502;
	override name = "TruncatedFrameError";
	constructor(protocol: string, bytes: number) {
		super(`${protocol}: stream ended inside a frame (${bytes} bytes of it)`, "ERR_TRUNCATED_FRAME");
	}
}

/** A frame that is not a message of the protocol (wrong shape or type). */
export class BadMessageError extends AgentError {
	static override status = 502;
	override name = "BadMessageError";
	constructor(protocol: string, why: string) {
		super(`${protocol}: ${why}`, "ERR_BAD_MESSAGE");
	}
}
