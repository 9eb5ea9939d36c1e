// Membership and failure detection: SWIM with Lifeguard, over UDP or a simulated network.
export { decodePacket, encodePacket, type Packet, VERSION } from "./codec.ts";
export { lanConfig, type MembershipConfig, validateConfig, wanConfig } from "./config.ts";
export * from "./errors.ts";
export { Membership, type MembershipOptions } from "./membership.ts";
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
