// Named errors of the container side of the runtime (images have theirs in image/errors.ts).
export * from "./image/errors.ts";

export class RuntimeError extends Error {
	readonly code: string;
	override name = "RuntimeError";
	constructor(message: string, code = "ERR_RUNTIME", options?: ErrorOptions) {
		super(message, options);
		this.code = code;
	}
}

export class InvalidSpecError extends RuntimeError {
	override name = "InvalidSpecError";
	constructor(message: string) {
		super(message, "ERR_INVALID_SPEC");
	}
}

export class ContainerNotFoundError extends RuntimeError {
	override name = "ContainerNotFoundError";
	constructor(idOrName: string) {
		super(`no such container: ${idOrName}`, "ERR_NO_SUCH_CONTAINER");
	}
}

export class NameInUseError extends RuntimeError {
	override name = "NameInUseError";
	constructor(name: string, id: string) {
		super(`the name "${name}" is already used by container ${id.slice(0, 12)}`, "ERR_NAME_IN_USE");
	}
}

export class PlatformUnsupportedError extends RuntimeError {
	override name = "PlatformUnsupportedError";
	constructor(platform: string, why: string) {
		super(`cannot run ${platform} here: ${why}`, "ERR_PLATFORM_UNSUPPORTED");
	}
}

export class ContainerRunningError extends RuntimeError {
	override name = "ContainerRunningError";
	constructor(id: string) {
		super(`container ${id.slice(0, 12)} is running: stop it first or use force`, "ERR_CONTAINER_RUNNING");
	}
}

export class AmbiguousIdError extends RuntimeError {
	override name = "AmbiguousIdError";
	readonly candidates: string[];
	constructor(prefix: string, candidates: string[]) {
		super(`"${prefix}" matches several containers: ${candidates.join(", ")}; give more of the id`, "ERR_AMBIGUOUS_ID");
		this.candidates = candidates;
	}
}

export class ImageInUseError extends RuntimeError {
	override name = "ImageInUseError";
	constructor(ref: string, containers: string[]) {
		super(
			`image ${ref} is used by container(s) ${containers.join(", ")}: remove them first or use force`,
			"ERR_IMAGE_IN_USE",
		);
	}
}

/** A log daemon client sent something other than a container id and a newline (or too much of it). */
export class LogdRequestError extends RuntimeError {
	override name = "LogdRequestError";
	constructor(why: string) {
		super(`log daemon request refused: ${why}`, "ERR_LOGD_REQUEST");
	}
}
