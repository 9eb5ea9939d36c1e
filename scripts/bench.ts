// `npm run bench -- NAME [ARGS...]` runs bench/NAME.ts or bench/NAME/index.ts with the pinned Node,
// streams its output, bounds its time, and checks the contract every benchmark keeps: the last
// stdout line is one JSON object {"bench", "ours", "peer", "ratios"} (ratio = ours / peer).
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const benchDir = process.env.TSSWARM_BENCH_DIR ?? join(root, "bench");

function available(): string[] {
	if (!existsSync(benchDir)) return [];
	return readdirSync(benchDir, { withFileTypes: true })
		.filter((d) => (d.isDirectory() && existsSync(join(benchDir, d.name, "index.ts"))) || d.name.endsWith(".ts"))
		.map((d) => d.name.replace(/\.ts$/, ""))
		.sort();
}

function resolveBench(name: string): string | undefined {
	for (const p of [join(benchDir, `${name}.ts`), join(benchDir, name, "index.ts")]) if (existsSync(p)) return p;
	return undefined;
}

export function validateResult(line: string, name: string): string | undefined {
	let obj: unknown;
	try {
		obj = JSON.parse(line);
	} catch {
		return "the last line is not JSON";
	}
	if (typeof obj !== "object" || obj === null) return "the last line is not a JSON object";
	const o = obj as Record<string, unknown>;
	if (o.bench !== name) return `"bench" is ${JSON.stringify(o.bench)}, expected "${name}"`;
	for (const k of ["ours", "peer", "ratios"]) {
		if (typeof o[k] !== "object" || o[k] === null) return `"${k}" is missing or not an object`;
	}
	for (const [k, v] of Object.entries(o.ratios as object)) {
		if (typeof v !== "number" || !Number.isFinite(v)) return `ratio "${k}" is not a finite number`;
	}
	return undefined;
}

async function main(): Promise<number> {
	const [name, ...rest] = process.argv.slice(2);
	const timeoutIdx = rest.indexOf("--timeout-min");
	let timeoutMin = 30;
	if (timeoutIdx >= 0) {
		timeoutMin = Number(rest[timeoutIdx + 1]);
		rest.splice(timeoutIdx, 2);
	}
	if (!name) {
		process.stderr.write(
			`usage: npm run bench -- NAME [ARGS...] [--timeout-min M]\nbenchmarks: ${available().join(", ") || "(none)"}\n`,
		);
		return 2;
	}
	const file = resolveBench(name);
	if (!file) {
		process.stderr.write(`bench: no benchmark "${name}" (have: ${available().join(", ") || "none"})\n`);
		return 2;
	}
	// Its own process group, so a timeout or Ctrl-C reaches everything it started (SIGTERM: it cleans up).
	const child = spawn(process.execPath, [file, ...rest], { stdio: ["ignore", "pipe", "inherit"], detached: true });
	let lastLine = "";
	let buf = "";
	child.stdout.setEncoding("utf8").on("data", (d: string) => {
		process.stdout.write(d);
		buf += d;
		const lines = buf.split("\n");
		buf = lines.pop() ?? "";
		for (const l of lines) if (l.trim()) lastLine = l.trim();
	});
	const stop = (sig: NodeJS.Signals) => {
		try {
			if (child.pid) process.kill(-child.pid, sig);
		} catch {}
	};
	const timer = setTimeout(() => {
		process.stderr.write(`bench: ${name} exceeded ${timeoutMin} min; stopping it\n`);
		stop("SIGTERM");
		setTimeout(() => stop("SIGKILL"), 30_000).unref();
	}, timeoutMin * 60_000);
	process.on("SIGINT", () => stop("SIGTERM"));
	process.on("SIGTERM", () => stop("SIGTERM"));
	const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
	clearTimeout(timer);
	if (buf.trim()) lastLine = buf.trim();
	if (code !== 0) {
		process.stderr.write(`bench: ${name} exited with ${code}\n`);
		return 1;
	}
	const problem = validateResult(lastLine, name);
	if (problem) {
		process.stderr.write(`bench: ${name} broke the result contract: ${problem}\n`);
		return 1;
	}
	return 0;
}

if (import.meta.main) process.exitCode = await main();
