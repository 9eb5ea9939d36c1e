// The ARCHITECTURE table as a test: who may import whom. consensus/, runtime/ and overlay-net/
// import nothing of tsswarm; in agent/ only the worker touches the machine (runtime/, overlay-net's
// data plane); modules meet only through their index.ts; the CLI talks to the agent's API.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import t from "tap";

const ROOT = new URL("../", import.meta.url).pathname;
const SPEC = /(?:^|[\s;])(?:import|export)\s[^"']*?from\s*["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;

/** Every relative import of every .ts file under `top`, as [file, target] paths from the root. */
function importsOf(top: string): Array<[string, string]> {
	const out: Array<[string, string]> = [];
	for (const f of readdirSync(join(ROOT, top), { recursive: true, encoding: "utf8" })) {
		if (!f.endsWith(".ts")) continue;
		const file = join(top, f);
		for (const m of readFileSync(join(ROOT, file), "utf8").matchAll(SPEC))
			out.push([file, normalize(join(dirname(file), m[1] ?? m[2]!))]);
	}
	return out;
}

/** Known exceptions, each with the issue that removes it. */
const ALLOWED = new Set<string>([]);

function violations(): string[] {
	const bad: string[] = [];
	const top = (p: string) => p.split("/")[0]!;
	for (const t0 of ["consensus", "runtime", "overlay-net", "agent", "cli"]) {
		for (const [file, target] of importsOf(t0)) {
			const edge = `${file} -> ${target}`;
			if (ALLOWED.has(edge)) continue;
			const [a, b] = [file.split("/"), target.split("/")];
			if (["consensus", "runtime", "overlay-net"].includes(t0)) {
				if (top(target) !== t0) bad.push(`${edge}: ${t0}/ imports nothing of tsswarm`);
				continue;
			}
			if (t0 === "agent") {
				const worker = a[1] === "worker";
				if (top(target) === "consensus" && target !== "consensus/index.ts")
					bad.push(`${edge}: only consensus/index.ts`);
				if (top(target) === "runtime" && !worker) bad.push(`${edge}: only agent/worker/ imports runtime/`);
				if (top(target) === "overlay-net" && !worker && target !== "overlay-net/ipam/index.ts")
					bad.push(`${edge}: outside agent/worker/ only overlay-net/ipam/index.ts (no kernel)`);
				if (top(target) === "agent" && b.length > 2 && a[1] !== b[1] && b.at(-1) !== "index.ts")
					bad.push(`${edge}: another agent module only through its index.ts`);
				if (top(target) === "cli") bad.push(`${edge}: agent/ does not import the CLI`);
			}
			// `tsswarm agent` hands the process to the agent's entry point, agent/main.ts.
			if (t0 === "cli" && top(target) === "agent" && !/^agent\/(main|api\/(index|client|types))\.ts$/.test(target))
				bad.push(`${edge}: the CLI talks to the agent through agent/api only (and starts it by agent/main.ts)`);
		}
	}
	return bad;
}

t.test("imports follow the ARCHITECTURE table", async (t) => {
	t.same(violations(), [], "no import crosses a boundary");
	// Positive control: the checker sees real edges (the worker's boundary cannot be vacuous).
	const edges = importsOf("agent").map(([f, to]) => `${relative(ROOT, join(ROOT, f))} -> ${to}`);
	t.ok(edges.includes("agent/store/store.ts -> consensus/index.ts"), "it parses imports at all");
	t.ok(
		edges.some((e) => e.startsWith("agent/agent.ts -> agent/")),
		"and agent's own",
	);
});
