/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {
	readonly code = "ERR_USAGE";
	override name = "UsageError";
}

/** The command ran and failed: exit code 1, one line on stderr. */
export class CommandError extends Error {
	readonly code: string;
	override name = "CommandError";
	constructor(message: string, code = "ERR_COMMAND") {
		super(message);
		this.code = code;
	}
}
