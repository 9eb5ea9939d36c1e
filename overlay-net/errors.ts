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

export class PortConflictError extends OverlayError {
	override name = "PortConflictError";
	constructor(port: number, owner: string) {
		super(`port ${port} is already published by ${owner}`, "ERR_PORT_CONFLICT");
	}
}

export class EncryptionUnsupportedError extends OverlayError {
	override name = "EncryptionUnsupportedError";
	constructor(why: string) {
		super(`encrypted overlay networks are not supported on this kernel: ${why}`, "ERR_ENCRYPTION_UNSUPPORTED");
	}
}

export class InvalidPublishError extends OverlayError {
	override name = "InvalidPublishError";
	constructor(why: string) {
		super(`invalid load-balancing rule: ${why}`, "ERR_INVALID_PUBLISH");
	}
}
