// Runs one seeded simulation and checks it; used by the tests and by `npm run sim`.
import { SimCluster, type SimOptions } from "./cluster.ts";
import { checkLinearizable } from "./linearizability.ts";

export interface SimOutcome {
	seed: number;
	ok: boolean;
	error?: string;
	ops: number;
	acknowledged: number;
	stats: SimCluster["stats"];
}

export function runSeed(opts: SimOptions): SimOutcome {
	const sim = new SimCluster(opts);
	try {
		sim.run();
		const lin = checkLinearizable(sim.history);
		if (!lin.ok) throw new Error(`history not linearizable on key ${lin.key} (${lin.ops?.length} ops)`);
	} catch (err) {
		return {
			seed: opts.seed,
			ok: false,
			error: (err as Error).message,
			ops: sim.history.length,
			acknowledged: 0,
			stats: sim.stats,
		};
	}
	const acknowledged = sim.history.filter((o) => o.ret !== Number.POSITIVE_INFINITY).length;
	return { seed: opts.seed, ok: true, ops: sim.history.length, acknowledged, stats: sim.stats };
}

export const replayCommand = (seed: number, nodes: number) => `npm run sim -- --seed ${seed} --nodes ${nodes}`;
