// Named errors of the lab harness; each carries a stable `code` for callers and tests.

export class LabError extends Error {
	readonly code: string;
	override name = "LabError";
	constructor(message: string, code = "ERR_LAB", options?: ErrorOptions) {
		super(message, options);
		this.code = code;
	}
}

export class InvalidLabNameError extends LabError {
	override name = "InvalidLabNameError";
	constructor(name: string) {
		super(`invalid lab name "${name}": use 1-24 lowercase letters, digits or dashes`, "ERR_LAB_NAME");
	}
}

export class LabExistsError extends LabError {
	override name = "LabExistsError";
	constructor(name: string) {
		super(`lab "${name}" already exists (tsswarm lab down --name ${name} removes it)`, "ERR_LAB_EXISTS");
	}
}

export class LabNotFoundError extends LabError {
	override name = "LabNotFoundError";
	constructor(name: string) {
		super(`no lab named "${name}" (tsswarm lab ls lists them)`, "ERR_LAB_NOT_FOUND");
	}
}

export class NodeNotFoundError extends LabError {
	override name = "NodeNotFoundError";
	constructor(lab: string, node: string, known: string[]) {
		super(`lab "${lab}" has no node "${node}" (nodes: ${known.join(", ")})`, "ERR_LAB_NODE");
	}
}

/** A system command the lab ran failed; the message carries its stderr. */
export class CommandFailedError extends LabError {
	override name = "CommandFailedError";
	readonly exitCode: number | null;
	constructor(argv: readonly string[], exitCode: number | null, stderr: string) {
		super(
			`${argv.join(" ")} failed (exit ${exitCode}): ${stderr.trim().split("\n").slice(-3).join(" | ")}`,
			"ERR_LAB_CMD",
		);
		this.exitCode = exitCode;
	}
}
