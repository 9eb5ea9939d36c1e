import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { ApiError } from "../agent/api/client.ts";
import { registrations } from "./commands/index.ts";
import { globals } from "./commands/options.ts";
import { InterruptedError, UsageError } from "./errors.ts";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** `tsswarm run` failed itself (a flag, the image, the runtime), not the container: docker's 125. */
export const EXIT_RUN_FAILED = 125;

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
		.enablePositionalOptions()
		.option("-H, --host <unix:///path>", "the agent's socket (default: TSSWARM_HOST, else the one under --data-root)")
		.hook("preAction", () => {
			globals.host = program.opts<{ host?: string }>().host;
		});
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

/**
 * Runs the CLI and returns the exit code: 0 ok, 1 failure, 2 usage error; for `run`, the
 * container's own code, or 125 when tsswarm failed before or around it (as docker run does).
 */
export async function main(argv: string[]): Promise<number> {
	const code = await execute(argv);
	return commandOf(argv) === "run" && runFailed.has(code) && !runExitCode ? EXIT_RUN_FAILED : code;
}

/** The command argv names: its first word that is neither a global option nor one's value. */
function commandOf(argv: string[]): string | undefined {
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i]!;
		if (a === "-H" || a === "--host") i++;
		else if (!a.startsWith("-")) return a;
	}
	return undefined;
}

/** Exit codes that, for `run`, mean tsswarm failed (not the container, which sets its code itself). */
const runFailed = new Set([EXIT_FAILURE, EXIT_USAGE]);
let runExitCode = false;

async function execute(argv: string[]): Promise<number> {
	const program = buildProgram();
	runExitCode = false;
	try {
		await program.parseAsync(argv, { from: "user" });
		// Commands that pass through another program's status (lab exec, run) set process.exitCode.
		runExitCode = typeof process.exitCode === "number";
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
