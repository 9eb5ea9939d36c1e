// Runs the whole tap suite and ends with the plain line `N passed, N failed` that CI reads.
// Counts the named tests inside each file (first-level subtests); a file that fails without a
// failing subtest (a crash, a timeout, a bad exit code) counts as one failure of its own.
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

// tap's `include` globs do not match a bare directory argument, so expand directories here.
function expand(arg: string): string[] {
	if (!statSync(arg, { throwIfNoEntry: false })?.isDirectory()) return [arg];
	return readdirSync(arg, { recursive: true, encoding: "utf8" })
		.filter((f) => f.endsWith(".test.ts"))
		.map((f) => join(arg, f))
		.sort();
}

const files = process.argv.slice(2).flatMap(expand);
const tap = spawn("node_modules/.bin/tap", ["--reporter=tap", ...files], {
	stdio: ["ignore", "pipe", "inherit"],
	// tap's shim runs `node` from PATH: make it the pinned one even outside `npm test`.
	env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` },
});

let passed = 0;
let failed = 0;
let fileHadFailure = false;
let buffered = "";
const log: string[] = [];

function onLine(line: string): void {
	log.push(line);
	const sub = /^ {4}(not ok|ok) \d+/.exec(line);
	if (sub) {
		if (sub[1] === "ok") passed++;
		else {
			failed++;
			fileHadFailure = true;
		}
		return;
	}
	const top = /^(not ok|ok) \d+ - (.*)/.exec(line);
	if (top) {
		if (top[1] === "not ok" && !fileHadFailure) failed++;
		fileHadFailure = false;
	}
}

tap.stdout.on("data", (chunk: Buffer) => {
	process.stdout.write(chunk);
	buffered += chunk.toString("utf8");
	let nl = buffered.indexOf("\n");
	while (nl >= 0) {
		onLine(buffered.slice(0, nl));
		buffered = buffered.slice(nl + 1);
		nl = buffered.indexOf("\n");
	}
});

tap.on("close", (code) => {
	if (buffered) onLine(buffered);
	mkdirSync(".cache", { recursive: true });
	writeFileSync(".cache/last-test-run.tap", `${log.join("\n")}\n`);
	if (code !== 0 && failed === 0) failed++;
	process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
	process.exitCode = failed > 0 ? 1 : 0;
});
