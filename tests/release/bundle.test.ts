// What the release bundle changes in its dependencies' sources, for footprint (scripts/release):
// libp2p's peer store sorts without String#localeCompare (whose first call loads ICU's collator).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import t from "tap";
import { SOURCE_PATCHES } from "../../scripts/release/build.ts";

const modules = join(new URL("../..", import.meta.url).pathname, "node_modules");
const SORTING = [
	"@libp2p/peer-store/dist/src/utils/to-peer-pb.js",
	"@libp2p/peer-store/dist/src/utils/dedupe-addresses.js",
	"@libp2p/peer-record/dist/src/peer-record/utils.js",
].map((f) => join(modules, f));

/** The files as the bundle would hold them (each alone, not bundled), with or without the patches. */
async function transformed(patched: boolean): Promise<string[]> {
	const r = await build({
		entryPoints: SORTING,
		outdir: "/nonexistent",
		write: false,
		bundle: false,
		format: "esm",
		logLevel: "error",
		plugins: patched ? SOURCE_PATCHES : [],
	});
	return r.outputFiles.map((f) => f.text);
}

t.test("the peer store's sorts compare code units in the bundle, not with localeCompare", async (t) => {
	const before = await transformed(false);
	t.ok(
		before.every((src) => src.includes(".localeCompare(")),
		"unpatched, each file sorts with localeCompare (positive control)",
	);
	const after = await transformed(true);
	for (const [i, src] of after.entries()) {
		t.notOk(src.includes("localeCompare"), `${SORTING[i]}: no localeCompare left`);
		t.ok(src.includes("codeUnitOrder("), `${SORTING[i]}: sorts by code units`);
	}
	// The comparison itself: a total order by UTF-16 code units, as the records need.
	const cmp = /const codeUnitOrder = (.*);/.exec(after[0]!)?.[1];
	t.ok(cmp, "the helper is in the file");
	const order = new Function(`return ${cmp}`)() as (a: string, b: string) => number;
	t.same(["b", "B", "a", "/ip4", "/dns"].sort(order), ["/dns", "/ip4", "B", "a", "b"]);
	t.equal(order("x", "x"), 0);
});

/** Files under dir ending in .ts, with the lines that call String#localeCompare. */
function callers(dir: string): string[] {
	const out: string[] = [];
	for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
		if (!e.isFile() || !e.name.endsWith(".ts")) continue;
		const f = join(e.parentPath, e.name);
		for (const [i, line] of readFileSync(f, "utf8").split("\n").entries())
			if (line.includes(".localeCompare(")) out.push(`${f}:${i + 1}`);
	}
	return out;
}

t.test("the agent's own code never sorts with localeCompare (it would load ICU's collator)", async (t) => {
	const root = new URL("../..", import.meta.url).pathname;
	t.ok(callers(join(root, "cli")).length > 0, "control: the search finds the CLI's (a short-lived process)");
	for (const dir of ["agent", "runtime", "consensus", "overlay-net"])
		t.same(callers(join(root, dir)), [], `${dir}/ has no localeCompare call`);
});
