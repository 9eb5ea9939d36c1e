// Named errors of the image side of the runtime; each carries a stable `code`.

export class ImageError extends Error {
	readonly code: string;
	override name = "ImageError";
	constructor(message: string, code = "ERR_IMAGE", options?: ErrorOptions) {
		super(message, options);
		this.code = code;
	}
}

export class InvalidReferenceError extends ImageError {
	override name = "InvalidReferenceError";
	constructor(ref: string, why: string) {
		super(`invalid image reference "${ref}": ${why}`, "ERR_INVALID_REFERENCE");
	}
}

export class InvalidPlatformError extends ImageError {
	override name = "InvalidPlatformError";
	constructor(p: string) {
		super(`invalid platform "${p}": use os/arch[/variant], e.g. linux/arm64 or linux/arm/v7`, "ERR_INVALID_PLATFORM");
	}
}

export class DigestMismatchError extends ImageError {
	override name = "DigestMismatchError";
	constructor(what: string, want: string, got: string) {
		super(`${what}: expected digest ${want}, got ${got}`, "ERR_DIGEST_MISMATCH");
	}
}

export class RegistryError extends ImageError {
	override name = "RegistryError";
	readonly status: number;
	constructor(message: string, status: number, code = "ERR_REGISTRY") {
		super(message, code);
		this.status = status;
	}
}

export class ImageNotFoundError extends ImageError {
	override name = "ImageNotFoundError";
	constructor(ref: string, where = "") {
		super(`image ${ref} not found${where ? ` ${where}` : ""}`, "ERR_IMAGE_NOT_FOUND");
	}
}

export class PlatformNotFoundError extends ImageError {
	override name = "PlatformNotFoundError";
	constructor(ref: string, want: string, have: string[]) {
		super(`image ${ref} has no ${want} variant (it has: ${have.join(", ") || "none"})`, "ERR_PLATFORM_NOT_FOUND");
	}
}

export class UnsupportedMediaTypeError extends ImageError {
	override name = "UnsupportedMediaTypeError";
	constructor(mediaType: string) {
		super(`unsupported media type ${mediaType}`, "ERR_MEDIA_TYPE");
	}
}

/** A layer tried to write outside its directory, or carried something we never unpack. */
export class UnsafeLayerError extends ImageError {
	override name = "UnsafeLayerError";
	constructor(entry: string, why: string) {
		super(`refusing layer entry "${entry}": ${why}`, "ERR_UNSAFE_LAYER");
	}
}

/** A digest or diff id that is not "sha256:" + 64 lowercase hex: never turned into a path. */
export class InvalidDigestError extends ImageError {
	override name = "InvalidDigestError";
	constructor(digest: unknown, what: string) {
		super(
			`invalid digest ${JSON.stringify(digest)} (${what}): expected "sha256:" and 64 lowercase hex digits`,
			"ERR_INVALID_DIGEST",
		);
	}
}

/** A layer whose uncompressed stream passed the store's bound (a decompression bomb, say). */
export class LayerTooLargeError extends ImageError {
	override name = "LayerTooLargeError";
	constructor(layer: string, maxBytes: number) {
		super(`layer ${layer} unpacks to more than ${maxBytes} bytes (the store's maxLayerBytes)`, "ERR_LAYER_TOO_LARGE");
	}
}

/** An image archive (OCI layout or docker save) that names an entry it does not hold as a plain file. */
export class UnsafeArchiveError extends ImageError {
	override name = "UnsafeArchiveError";
	constructor(entry: string, why: string) {
		super(`refusing archive entry "${entry}": ${why}`, "ERR_UNSAFE_ARCHIVE");
	}
}
