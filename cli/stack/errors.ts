// Named errors of `tsswarm stack`: each refusal of a compose file says which file, where (line and
// column, or the key path) and what was wrong, before anything in the cluster changes.

/** A compose file (or the set of them) cannot be deployed as written: exit code 1. */
export class ComposeError extends Error {
	readonly code: string;
	override name = "ComposeError";
	constructor(message: string, code = "ERR_COMPOSE") {
		super(message);
		this.code = code;
	}
}

/** The YAML itself is broken: the file, line and column. */
export class ComposeYamlError extends ComposeError {
	override name = "ComposeYamlError";
	constructor(file: string, line: number, col: number, why: string) {
		super(`${file}:${line}:${col}: ${why}`, "ERR_COMPOSE_YAML");
	}
}

/** The file does not match the Compose Specification's schema: the key path. */
export class ComposeSchemaError extends ComposeError {
	override name = "ComposeSchemaError";
	constructor(file: string, path: string, why: string) {
		super(`${file}: ${path} ${why}`, "ERR_COMPOSE_SCHEMA");
	}
}

/** A `${...}` that cannot be substituted: a bad form, or a required variable without a value. */
export class ComposeInterpolationError extends ComposeError {
	override name = "ComposeInterpolationError";
	constructor(file: string, path: string, why: string) {
		super(`${file}: invalid interpolation format for ${path}: ${why}`, "ERR_COMPOSE_INTERPOLATION");
	}
}

/** Keys docker refuses in a stack (docker's own wording, its multi-line form). */
export class ComposeForbiddenError extends ComposeError {
	override name = "ComposeForbiddenError";
	readonly properties: Record<string, string>;
	constructor(properties: Record<string, string>) {
		const lines = Object.entries(properties)
			.map(([k, v]) => `${k}: ${v}`)
			.sort();
		super(`compose file contains unsupported options:\n\n${lines.join("\n\n")}\n`, "ERR_COMPOSE_FORBIDDEN");
		this.properties = properties;
	}
}

/** A service names a network, volume, secret or config the file does not declare (or the cluster lacks). */
export class ComposeReferenceError extends ComposeError {
	override name = "ComposeReferenceError";
	constructor(message: string) {
		super(message, "ERR_COMPOSE_REFERENCE");
	}
}

/** A key or value tsswarm cannot honour (not a schema error: the file is valid Compose). */
export class ComposeUnsupportedError extends ComposeError {
	override name = "ComposeUnsupportedError";
	constructor(message: string) {
		super(message, "ERR_COMPOSE_UNSUPPORTED");
	}
}

/** A dependency did not become healthy in time during the first deployment. */
export class StackDependencyTimeoutError extends ComposeError {
	override name = "StackDependencyTimeoutError";
	constructor(service: string, dependency: string, seconds: number, state: string) {
		super(
			`service ${service} waits for ${dependency} to be healthy (depends_on: service_healthy), but after ${seconds} s it is ${state}: ` +
				`the rest of the stack was not created (tsswarm service ps ${dependency})`,
			"ERR_STACK_DEPENDENCY_TIMEOUT",
		);
	}
}
