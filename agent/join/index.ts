// Secure join: tokens, the cluster-key proof, and the /tsswarm/join/1 protocol.
export {
	JOIN_PROTOCOL,
	type JoinGrant,
	type JoinServerState,
	RateLimiter,
	requestJoin,
	Sessions,
	serveJoin,
	TokenBucket,
} from "./protocol.ts";
export {
	base32,
	fingerprint,
	formatToken,
	hashSecret,
	newSecret,
	parseToken,
	type Role,
	type Token,
} from "./tokens.ts";
