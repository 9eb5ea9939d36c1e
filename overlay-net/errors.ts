// Named errors of overlay-net; each carries a stable `code`.

export class OverlayError extends Error {
	readonly code: string;
	override name = "OverlayError";
	constructor(message: string, code = "ERR_OVERLAY") {
		super(message);
		this.code = code;
	}
}

export class InvalidCidrError extends OverlayError {
	override name = "InvalidCidrError";
	constructor(cidr: string, why: string) {
		super(`invalid subnet "${cidr}": ${why}`, "ERR_INVALID_CIDR");
	}
}

export class SubnetOverlapError extends OverlayError {
	override name = "SubnetOverlapError";
	constructor(cidr: string, other: string, network: string) {
		super(`subnet ${cidr} overlaps ${other} of network ${network}`, "ERR_SUBNET_OVERLAP");
	}
}

export class PoolExhaustedError extends OverlayError {
	override name = "PoolExhaustedError";
	constructor(what: string) {
		super(`no free ${what} left`, "ERR_POOL_EXHAUSTED");
	}
}

export class NetworkNotFoundError extends OverlayError {
	override name = "NetworkNotFoundError";
	constructor(id: string) {
		super(`no network ${id}`, "ERR_NETWORK_NOT_FOUND");
	}
}

export class NetworkExistsError extends OverlayError {
	override name = "NetworkExistsError";
	constructor(name: string) {
		super(`network ${name} already exists`, "ERR_NETWORK_EXISTS");
	}
}

export class NetworkInUseError extends OverlayError {
	override name = "NetworkInUseError";
	constructor(name: string, owners: string[]) {
		const list = owners.slice(0, 5).join(", ") + (owners.length > 5 ? `, and ${owners.length - 5} more` : "");
		super(`network ${name} still has ${owners.length} address(es) in use (${list})`, "ERR_NETWORK_IN_USE");
	}
}

export class PortConflictError extends OverlayError {
	override name = "PortConflictError";
	constructor(port: number, owner: string, protocol = "tcp") {
		super(`port ${port}/${protocol} is already published by ${owner}`, "ERR_PORT_CONFLICT");
	}
}

export class InvalidPortError extends OverlayError {
	override name = "InvalidPortError";
	constructor(port: unknown, why = "a port is an integer from 1 to 65535") {
		super(`invalid port ${JSON.stringify(port)}: ${why}`, "ERR_INVALID_PORT");
	}
}

export class UnderlayNotFoundError extends OverlayError {
	override name = "UnderlayNotFoundError";
	constructor(address: string, why: string) {
		super(`underlay address ${address}: ${why}`, "ERR_UNDERLAY_NOT_FOUND");
	}
}

export class EncryptionUnsupportedError extends OverlayError {
	override name = "EncryptionUnsupportedError";
	constructor(why: string) {
		super(`encrypted overlay networks are not supported on this kernel: ${why}`, "ERR_ENCRYPTION_UNSUPPORTED");
	}
}

/** The error `--opt encrypted` gets: `missing` names what the kernel lacks (wireguard, ipsec-aead). */
export class OverlayEncryptionUnsupportedError extends EncryptionUnsupportedError {
	override name = "OverlayEncryptionUnsupportedError";
	readonly missing: string[];
	constructor(why: string, missing: string[]) {
		super(why);
		this.missing = missing;
	}
}

export class InvalidPublishError extends OverlayError {
	override name = "InvalidPublishError";
	constructor(why: string) {
		super(`invalid load-balancing rule: ${why}`, "ERR_INVALID_PUBLISH");
	}
}
