import { readFileSync } from "node:fs";
import { enableCompileCache } from "node:module";

// `tsswarm --version` answers before the argument parser loads: commander alone costs ~9 ms of a
// ~40 ms start, and scripts and health probes call --version often.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === "--version" || args[0] === "-v")) {
	const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
	process.stdout.write(`${pkg.version}\n`);
} else {
	// When started without the wrapper, still cache the stripped TypeScript of everything imported next.
	enableCompileCache();
	const { main } = await import("./main.ts");
	process.exitCode = await main(args);
}
