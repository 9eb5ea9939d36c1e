// `npm run sim -- --seeds N [--from S] [--nodes 3|5]` runs N seeded simulations; `--seed S` replays one.
import { parseArgs } from "node:util";
import { replayCommand, runSeed } from "./run.ts";

const { values } = parseArgs({
	options: {
		seeds: { type: "string", default: "200" },
		from: { type: "string", default: "1" },
		seed: { type: "string" },
		nodes: { type: "string", default: "3" },
	},
});
const nodes = Number(values.nodes);
const seeds = values.seed
	? [Number(values.seed)]
	: Array.from({ length: Number(values.seeds) }, (_, i) => Number(values.from) + i);
const t0 = performance.now();
let failed = 0;
let ops = 0;
let acked = 0;
for (const seed of seeds) {
	const r = runSeed({ seed, nodes });
	ops += r.ops;
	acked += r.acknowledged;
	if (!r.ok) {
		failed++;
		process.stdout.write(`seed ${seed} FAILED: ${r.error}\n  replay: ${replayCommand(seed, nodes)}\n`);
	} else if (values.seed) {
		process.stdout.write(
			`seed ${seed} ok: ${JSON.stringify(r.stats)}, ${r.ops} ops (${r.acknowledged} acknowledged)\n`,
		);
	}
}
const secs = (performance.now() - t0) / 1000;
process.stdout.write(
	`${seeds.length - failed}/${seeds.length} seeds ok with ${nodes} nodes in ${secs.toFixed(1)} s; ${ops} client ops, ${acked} acknowledged, all linearizable\n`,
);
process.exitCode = failed > 0 ? 1 : 0;
