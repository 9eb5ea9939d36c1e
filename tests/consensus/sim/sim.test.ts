import t from "tap";
import { checkLinearizable, type KvOp } from "./linearizability.ts";
import { replayCommand, runSeed } from "./run.ts";

const INF = Number.POSITIVE_INFINITY;
const op = (client: number, kind: "put" | "get", value: string, call: number, ret: number, key = "k"): KvOp => ({
	client,
	key,
	kind,
	value,
	call,
	ret,
});

t.test("the checker accepts linearizable histories", async (t) => {
	t.ok(checkLinearizable([op(1, "put", "a", 0, 10), op(2, "get", "a", 11, 12)]).ok);
	// Concurrent put and get: the get may see the old or the new value.
	t.ok(checkLinearizable([op(1, "put", "a", 0, 10), op(2, "get", "", 1, 5)]).ok);
	t.ok(checkLinearizable([op(1, "put", "a", 0, 10), op(2, "get", "a", 1, 5)]).ok);
	// An unknown-outcome put may have happened...
	t.ok(checkLinearizable([op(1, "put", "a", 0, INF), op(2, "get", "a", 20, 21)]).ok);
	// ...or not.
	t.ok(checkLinearizable([op(1, "put", "a", 0, INF), op(2, "get", "", 20, 21)]).ok);
	// Keys are independent.
	t.ok(checkLinearizable([op(1, "put", "a", 0, 1, "x"), op(2, "get", "", 2, 3, "y")]).ok);
});

t.test("the checker rejects non-linearizable histories", async (t) => {
	// A stale read after a completed write.
	t.notOk(checkLinearizable([op(1, "put", "a", 0, 10), op(2, "get", "", 11, 12)]).ok);
	// A read of a value nobody wrote.
	t.notOk(checkLinearizable([op(2, "get", "zz", 0, 1)]).ok);
	// Two sequential reads disagree about the order of two writes.
	const r = checkLinearizable([
		op(1, "put", "a", 0, 100),
		op(2, "put", "b", 0, 100),
		op(3, "get", "a", 10, 20),
		op(3, "get", "b", 30, 40),
		op(3, "get", "a", 50, 60),
	]);
	t.notOk(r.ok, "a -> b -> a without a third write is impossible");
	t.equal(r.key, "k");
	// A write that was acknowledged yet later reads show it never happened.
	t.notOk(checkLinearizable([op(1, "put", "a", 0, 1), op(1, "put", "b", 2, 3), op(2, "get", "a", 4, 5)]).ok);
});

t.test(
	"seeded simulations: partitions, crashes, torn writes, loss, duplication, reordering, membership, a forging outsider",
	async (t) => {
		// About 10 s on an idle core; `npm run sim -- --seeds 10000` runs many more.
		const runs: Array<{ nodes: number; seeds: number }> = [
			{ nodes: 3, seeds: 600 },
			{ nodes: 5, seeds: 300 },
		];
		for (const { nodes, seeds } of runs) {
			const failures: string[] = [];
			const totals = {
				crashes: 0,
				torn: 0,
				partitions: 0,
				splits: 0,
				elections: 0,
				installs: 0,
				configChanges: 0,
				configsApplied: 0,
				transfers: 0,
				acknowledged: 0,
				forged: 0,
				forgedDelivered: 0,
				forgedRefused: 0,
				answeredAdversary: 0,
			};
			for (let seed = 1; seed <= seeds; seed++) {
				const r = runSeed({ seed, nodes });
				if (!r.ok) failures.push(`seed ${seed}: ${r.error} (replay: ${replayCommand(seed, nodes)})`);
				totals.crashes += r.stats.crashes;
				totals.torn += r.stats.torn;
				totals.partitions += r.stats.partitions;
				totals.elections += r.stats.elections;
				totals.installs += r.stats.installs;
				totals.splits += r.stats.splits;
				totals.configChanges += r.stats.configChanges;
				totals.configsApplied += r.stats.configsApplied;
				totals.transfers += r.stats.transfers;
				totals.acknowledged += r.acknowledged;
				totals.forged += r.stats.forged;
				totals.forgedDelivered += r.stats.forgedDelivered;
				totals.forgedRefused += r.stats.forgedRefused;
				totals.answeredAdversary += r.stats.answeredAdversary;
			}
			t.same(failures, [], `${seeds} seeds with ${nodes} nodes keep every invariant and are linearizable`);
			// The faults really happened (a simulation that injects nothing proves nothing).
			t.ok(totals.crashes > seeds, `crashes: ${totals.crashes}`);
			t.ok(totals.torn > 0, `torn writes: ${totals.torn}`);
			t.ok(totals.partitions > seeds / 2, `partitions: ${totals.partitions}`);
			t.ok(totals.elections > seeds, `elections: ${totals.elections}`);
			t.ok(totals.installs > 0, `snapshot installs: ${totals.installs}`);
			t.ok(totals.splits > seeds / 4, `two-group splits: ${totals.splits}`);
			t.ok(totals.configChanges > seeds, `membership changes proposed: ${totals.configChanges}`);
			t.ok(totals.configsApplied > seeds, `membership changes committed and applied: ${totals.configsApplied}`);
			t.ok(totals.transfers > seeds / 4, `leadership transfers: ${totals.transfers}`);
			t.ok(totals.acknowledged > seeds * 50, `acknowledged client ops: ${totals.acknowledged}`);
			// The outsider's forged messages reached members, and every one of them was refused.
			t.ok(totals.forgedDelivered > seeds * 20, `forged messages delivered to members: ${totals.forgedDelivered}`);
			t.equal(totals.forgedRefused, totals.forgedDelivered, "every forged message was refused");
			t.equal(totals.answeredAdversary, 0, "no member ever answered the outsider");
		}
	},
);

t.test("a seed replays exactly", async (t) => {
	const a = runSeed({ seed: 4242 });
	const b = runSeed({ seed: 4242 });
	t.same(a, b);
});
