// Membership and failure detection: SWIM with Lifeguard, over UDP or a simulated network.
export { decodeFrame, decodePacket, encodePacket, type Packet, probeTag, VERSION } from "./codec.ts";
export { lanConfig, type MembershipConfig, validateConfig, wanConfig } from "./config.ts";
export * from "./errors.ts";
export { type Freshness, FreshnessSource, ReplayWindows, WINDOW as REPLAY_WINDOW } from "./freshness.ts";
export { Membership, type MembershipOptions } from "./membership.ts";
export {
	claimBytes,
	ed25519Statements,
	type StatementCrypto,
	statementBytes,
	VerifiedStatements,
} from "./statements.ts";
export {
	type Clock,
	type PacketTransport,
	realClock,
	SimNetwork,
	SimTransport,
	UdpTransport,
	VirtualClock,
} from "./transport.ts";
export type * from "./types.ts";
