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

/** `lab stop/start` on a lab made without `--cluster`: its nodes have no agent to stop or start. */
export class NotClusterLabError extends LabError {
	override name = "NotClusterLabError";
	constructor(lab: string, action: string) {
		super(
			`lab "${lab}" runs no agents (it was made without --cluster), so there is nothing to ${action}`,
			"ERR_LAB_NOT_CLUSTER",
		);
	}
}

/** A `--platforms` entry this machine cannot run an agent as. */
export class UnsupportedPlatformError extends LabError {
	override name = "UnsupportedPlatformError";
	constructor(platform: string, supported: string[]) {
		super(
			`platform "${platform}" is not one a lab node can run here (supported: ${supported.join(", ")})`,
			"ERR_LAB_PLATFORM",
		);
	}
}

/** The foreign-architecture Node that runs an emulated node's agent is not installed. */
export class ForeignNodeMissingError extends LabError {
	override name = "ForeignNodeMissingError";
	constructor(platform: string, path: string) {
		super(
			`a ${platform} node needs the ${platform} Node binary at ${path} (bash scripts/bootstrap.sh fetches it)`,
			"ERR_LAB_FOREIGN_NODE",
		);
	}
}

/** A node's agent did not come up (or the cluster did not form); the message names its log. */
export class AgentStartError extends LabError {
	override name = "AgentStartError";
	constructor(message: string) {
		super(message, "ERR_LAB_AGENT");
	}
}

/** `lab start NODE --addr IP` with an address the node cannot take. */
export class LabAddressError extends LabError {
	override name = "LabAddressError";
	constructor(node: string, addr: string, why: string) {
		super(`${node} cannot move to ${addr}: ${why}`, "ERR_LAB_ADDR");
	}
}
