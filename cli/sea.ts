// The entry of the release executable (scripts/release bundles it into a Node single-executable
// application): `--version` before anything else loads; the hidden subcommands that runtime/ and
// overlay-net/ start as helper processes of this same file (__NAME); everything else is the CLI.
declare const __TSSWARM_VERSION__: string;

const args = process.argv.slice(2);
const fail = (err: unknown) => {
	process.stderr.write(`tsswarm: ${(err as Error)?.stack ?? err}\n`);
	process.exitCode = 1;
};

// The agent runs with at most two glibc malloc arenas (one per thread by default, up to 8 per
// core, each keeping what its thread freed): -3 MB idle RSS (bench/agent-rss). glibc reads this at
// start only, so the agent re-executes itself once with it set; same pid, stdio and arguments.
if (args[0] === "agent" && process.env.MALLOC_ARENA_MAX === undefined && typeof process.execve === "function") {
	process.execve(process.execPath, [process.execPath, ...args], { ...process.env, MALLOC_ARENA_MAX: "2" });
}

if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
	process.stdout.write(`${__TSSWARM_VERSION__}\n`);
} else if (args[0] === "__log-daemon" || args[0] === "__health-runner") {
	const name = args[0].slice(2) as "log-daemon" | "health-runner";
	import("../runtime/index.ts").then(({ runHelper }) => runHelper(name, args.slice(1))).catch(fail);
} else if (args[0] === "__netns-socket") {
	import("../overlay-net/index.ts").then(({ netnsSocket }) => netnsSocket(args.slice(1))).catch(fail);
} else {
	import("./main.ts").then(async ({ main }) => {
		process.exitCode = await main(args);
	}, fail);
}
