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

/** The command was stopped by a signal after cleaning up: exit 128 + signal number, as shells do. */
export class InterruptedError extends Error {
	readonly code = "ERR_INTERRUPTED";
	override name = "InterruptedError";
	readonly exitCode: number;
	constructor(signal: NodeJS.Signals) {
		super(`interrupted by ${signal}; cleaned up`);
		this.exitCode = signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 129;
	}
}
