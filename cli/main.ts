import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { ApiError } from "../agent/api/index.ts";
import { registrations } from "./commands/index.ts";
import { InterruptedError, UsageError } from "./errors.ts";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

// The release bundle (scripts/release) defines the version at build time; from source it is package.json's.
declare const __TSSWARM_VERSION__: string | undefined;

function version(): string {
	if (typeof __TSSWARM_VERSION__ === "string") return __TSSWARM_VERSION__;
	const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
	return pkg.version;
}

export function buildProgram(): Command {
	const program = new Command("tsswarm")
		.description("A Swarm-like cluster agent for edge fleets and homelabs")
		.version(version(), "-v, --version", "print the version and exit")
		.showSuggestionAfterError(true)
		.configureOutput({
			// Commander's own messages start with "error: "; keep them on one line, prefixed with our name.
			outputError: (str, write) => write(`tsswarm: ${str.replace(/^error: /, "").trim()}\n`),
		})
		.exitOverride()
		// Options after a command's arguments belong to the command being run (tsswarm run IMAGE sh -c ...).
		.enablePositionalOptions();
	for (const register of registrations) register(program);
	overrideExits(program.commands);
	return program;
}

// Commander calls process.exit() on errors unless every (nested) command opts out.
function overrideExits(commands: readonly Command[]): void {
	for (const cmd of commands) {
		cmd.exitOverride();
		cmd.configureOutput({ outputError: (str, write) => write(`tsswarm: ${str.replace(/^error: /, "").trim()}\n`) });
		overrideExits(cmd.commands);
	}
}

/** Runs the CLI and returns the exit code (0 ok, 1 failure, 2 usage error). */
export async function main(argv: string[]): Promise<number> {
	const program = buildProgram();
	try {
		await program.parseAsync(argv, { from: "user" });
		// Commands that pass through another program's status (lab exec) set process.exitCode.
		return typeof process.exitCode === "number" ? process.exitCode : EXIT_OK;
	} catch (err) {
		if (err instanceof CommanderError) {
			if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") {
				return EXIT_OK;
			}
			if (err.code === "commander.executeSubCommandAsync") return err.exitCode;
			return EXIT_USAGE;
		}
		const message = err instanceof Error ? err.message : String(err);
		process.stderr.write(`tsswarm: ${message.split("\n")[0]}\n`);
		if (err instanceof InterruptedError || err instanceof ApiError) return err.exitCode;
		return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
	}
}
