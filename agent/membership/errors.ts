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
	constructor(v: number) {
		super(`membership protocol version ${v} is not supported (this node speaks 1)`, "ERR_UNKNOWN_VERSION");
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
