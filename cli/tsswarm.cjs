// The entry the `tsswarm` wrapper runs. Plain CommonJS on purpose: `tsswarm --version` (scripts and
// health probes call it often) then needs neither the ESM loader nor TypeScript, and costs about
// what `node -e 0` does. Everything else goes to the TypeScript CLI, with Node's compile cache on.
"use strict";
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
	process.stdout.write(`${require("../package.json").version}\n`);
} else {
	require("node:module").enableCompileCache();
	import("./main.ts").then(
		async ({ main }) => {
			process.exitCode = await main(args);
		},
		(err) => {
			process.stderr.write(`tsswarm: ${err?.stack ?? err}\n`);
			process.exitCode = 1;
		},
	);
}
