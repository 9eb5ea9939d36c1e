// Named errors of the membership protocol; each carries a stable `code`.

export class MembershipError extends Error {
	readonly code: string;
	override name = "MembershipError";
	constructor(message: string, code = "ERR_MEMBERSHIP") {
		super(message);
		this.code = code;
	}
}

export class InvalidPacketError extends MembershipError {
	override name = "InvalidPacketError";
	constructor(why: string) {
		super(`invalid membership packet: ${why}`, "ERR_INVALID_PACKET");
	}
}

export class UnknownVersionError extends MembershipError {
	override name = "UnknownVersionError";
	constructor(v: number, ours: number) {
		super(`membership protocol version ${v} is not supported (this node speaks ${ours})`, "ERR_UNKNOWN_VERSION");
	}
}

/** The packet's MAC does not verify under our cluster key: another cluster, or forged. */
export class NotAMemberError extends MembershipError {
	override name = "NotAMemberError";
	constructor() {
		super("packet not authenticated by this cluster's key", "ERR_NOT_A_MEMBER");
	}
}

export class MetadataTooLargeError extends MembershipError {
	override name = "MetadataTooLargeError";
	constructor(size: number, max: number) {
		super(`member metadata of ${size} bytes exceeds the ${max}-byte limit`, "ERR_META_TOO_LARGE");
	}
}

export class BadConfigError extends MembershipError {
	override name = "BadConfigError";
	constructor(message: string) {
		super(message, "ERR_BAD_CONFIG");
	}
}

/** Member metadata of the wrong shape: unknown fields, wrong types, strings or lists too long. */
export class InvalidMetadataError extends MembershipError {
	override name = "InvalidMetadataError";
	constructor(why: string) {
		super(`invalid member metadata: ${why}`, "ERR_INVALID_META");
	}
}

/** A claim about a member older (lower incarnation) than what this node already knows. */
export class StaleIncarnationError extends MembershipError {
	override name = "StaleIncarnationError";
	constructor(member: string, state: string, got: number, have: number) {
		super(
			`stale update for ${member}: ${state} at incarnation ${got}, this node knows incarnation ${have}`,
			"ERR_STALE_INCARNATION",
		);
	}
}

/**
 * A member's statement about itself (alive at an incarnation, with its address and metadata, or
 * left) that is unsigned or not signed by that member's node key: forged by whoever sent it.
 */
export class BadSignatureError extends MembershipError {
	override name = "BadSignatureError";
	constructor(member: string, state: string, inc: number, why: string) {
		super(`refused ${state} statement for ${member} at incarnation ${inc}: ${why}`, "ERR_BAD_SIGNATURE");
	}
}

/**
 * A suspect or dead claim whose claimer is not a live member here (unknown, failed or left): its
 * word confirms nothing (peer ids cost nothing to mint; a failed member's claims are old news).
 */
export class UnknownClaimerError extends MembershipError {
	override name = "UnknownClaimerError";
	constructor(member: string, state: string, by: string, byState: string | undefined) {
		super(
			`refused ${state} claim about ${member} by ${by}: the claimer is ${byState ? `${byState} here` : "not a member we know"}`,
			"ERR_UNKNOWN_CLAIMER",
		);
	}
}

/** A packet this node already accepted (same sender boot and sequence), or too far behind it: a replay. */
export class ReplayedPacketError extends MembershipError {
	override name = "ReplayedPacketError";
	constructor(seq: number, why: string) {
		super(`replayed membership packet (sequence ${seq}): ${why}`, "ERR_REPLAYED_PACKET");
	}
}

/** A packet stamped further from our wall clock than the skew bound: an old capture, or a clock far off. */
export class PacketTimeError extends MembershipError {
	override name = "PacketTimeError";
	constructor(skewMs: number, maxMs: number) {
		super(
			`membership packet stamped ${Math.round(skewMs)} ms from this node's clock (bound ${maxMs} ms): replayed, or a clock far off`,
			"ERR_PACKET_TIME",
		);
	}
}
