import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import { validateResult } from "../../scripts/bench.ts";
import { tempDir } from "../helpers/index.ts";

const runner = new URL("../../scripts/bench.ts", import.meta.url).pathname;

t.test("the result contract", async (t) => {
	t.equal(validateResult('{"bench":"x","ours":{"a":1},"peer":{"a":2},"ratios":{"a":0.5}}', "x"), undefined);
	t.match(validateResult("not json", "x"), /not JSON/);
	t.match(validateResult('{"bench":"y","ours":{},"peer":{},"ratios":{}}', "x"), /expected "x"/);
	t.match(validateResult('{"bench":"x","ours":{},"ratios":{}}', "x"), /"peer" is missing/);
	t.match(validateResult('{"bench":"x","ours":{},"peer":{},"ratios":{"p99":null}}', "x"), /not a finite number/);
});

t.test("runs bench/NAME, passes arguments, checks the last line, bounds the time", async (t) => {
	const dir = tempDir();
	t.teardown(dir.remove);
	writeFileSync(
		join(dir.path, "good.ts"),
		'console.log("warming up");\nconsole.log(JSON.stringify({ bench: "good", ours: { n: Number(process.argv[2]) }, peer: { n: 2 }, ratios: { n: Number(process.argv[2]) / 2 } }));\n',
	);
	mkdirSync(join(dir.path, "folder"));
	writeFileSync(join(dir.path, "folder", "index.ts"), 'console.log("done, but no JSON");\n');
	writeFileSync(join(dir.path, "slow.ts"), "setInterval(() => {}, 1000);\n");
	const env = { ...process.env, TSSWARM_BENCH_DIR: dir.path };

	const good = await run([process.execPath, runner, "good", "3"], { env, allowFailure: true });
	t.equal(good.code, 0, good.stderr);
	t.match(good.stdout, /"ratios":\{"n":1\.5\}/);

	const broken = await run([process.execPath, runner, "folder"], { env, allowFailure: true });
	t.equal(broken.code, 1);
	t.match(broken.stderr, /broke the result contract: the last line is not JSON/);

	const missing = await run([process.execPath, runner, "nope"], { env, allowFailure: true });
	t.equal(missing.code, 2);
	t.match(missing.stderr, /no benchmark "nope" \(have: folder, good, slow\)/);

	const slow = await run([process.execPath, runner, "slow", "--timeout-min", "0.02"], { env, allowFailure: true });
	t.equal(slow.code, 1);
	t.match(slow.stderr, /exceeded 0\.02 min/);
});
