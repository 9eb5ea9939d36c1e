// Services through cuts and leader loss on a real 3-node cluster lab: a worker cut off keeps its
// tasks running (offline autonomy) and after heal the cluster keeps exactly the replicas asked for;
// the leader killed in the middle of a scale, a new leader finishes it.
import t from "tap";
import { waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import {
	allAlive,
	cli,
	containersOn,
	createSleepers,
	holds,
	leaderName,
	liveRunning,
	runningEverywhere,
	servicePs,
	total,
	waitPs,
} from "../helpers/services.ts";

const t0 = Date.now();
const lab = await withLab(t, { nodes: 3, cluster: true, registry: true });
t.comment(`lab up --cluster --registry: ${Date.now() - t0} ms`);

t.test("a worker cut off keeps its tasks; after heal no duplicate is left", async (t) => {
	await createSleepers(lab, "island", 3);
	const leader = await leaderName(lab, "n1");
	const cut = lab.nodes.map((n) => n.name).find((n) => n !== leader)!;
	const mine = await containersOn(lab, cut, "island", { running: true });
	t.equal(mine.length, 1, `control: ${cut} runs one replica`);

	const since = Date.now();
	t.equal(await lab.cut(cut), true, `lab cut ${cut}`);
	await waitPs(
		lab,
		leader,
		"island",
		`3 running off ${cut}`,
		(rs) => liveRunning(rs).filter((r) => r.node !== cut).length === 3,
		60_000,
	);
	t.comment(`replica of the cut node running elsewhere after ${Date.now() - since} ms`);
	// Offline autonomy: its container is still the one running there, untouched.
	t.same(
		(await containersOn(lab, cut, "island", { running: true })).map((c) => c.id),
		[mine[0]!.id],
		`${cut} still runs its container while cut off`,
	);
	t.equal(total(await runningEverywhere(lab, "island")), 4, "3 + the cut node's own: the policy's one extra");

	const healed = Date.now();
	t.equal(await lab.heal(cut), true, `lab heal ${cut}`);
	await waitFor(
		"3 running containers of island in all",
		async () => total(await runningEverywhere(lab, "island")) === 3,
		{
			timeoutMs: 60_000,
			intervalMs: 1000,
		},
	);
	t.comment(`after heal the stale replica stopped in ${Date.now() - healed} ms`);
	t.same(await containersOn(lab, cut, "island", { running: true }), [], `${cut}'s stale container stopped`);
	t.same(await holds(lab, "island"), [3], "island: exactly 3 running containers across the nodes for 3 s");
	t.equal(liveRunning(await servicePs(lab, cut, "island")).length, 3, `service ps on ${cut}: 3 running`);
	await allAlive(lab, leader);
	await cli(lab, leader, ["service", "rm", "island"]);
});

t.test("the leader killed mid-scale: a new leader finishes it", async (t) => {
	await createSleepers(lab, "grow", 3);
	const leader = await leaderName(lab, "n1");
	const others = lab.nodes.map((n) => n.name).filter((n) => n !== leader);
	const since = Date.now();
	await cli(lab, others[0]!, ["service", "scale", "--detach", "grow=6"]);
	t.equal(await lab.stop(leader, { kill: true }), true, `lab stop ${leader} --kill right after the scale`);
	const newLeader = await waitFor(
		"a new leader",
		async () => {
			const l = await leaderName(lab, others[0]!);
			return l !== leader ? l : undefined;
		},
		{ timeoutMs: 30_000, intervalMs: 1000 },
	);
	t.comment(`new leader ${newLeader} after ${Date.now() - since} ms`);
	const rows = await waitPs(
		lab,
		others[1]!,
		"grow",
		`6 running off ${leader}`,
		(rs) => liveRunning(rs).filter((r) => r.node !== leader).length === 6,
		90_000,
	);
	t.comment(`scale 3→6 finished by the new leader (old one's tasks moved too) after ${Date.now() - since} ms`);
	t.same([...new Set(liveRunning(rows).map((r) => r.node))].sort(), others.sort(), "spread over the two nodes left");
	t.same(
		liveRunning(rows)
			.map((r) => r.slot)
			.sort((a, b) => a! - b!),
		[1, 2, 3, 4, 5, 6],
		"slots 1..6, one each",
	);

	t.equal(await lab.start(leader), true, `lab start ${leader}`);
	await waitFor("6 running containers of grow in all", async () => total(await runningEverywhere(lab, "grow")) === 6, {
		timeoutMs: 60_000,
		intervalMs: 1000,
	});
	t.same(await holds(lab, "grow"), [6], "grow: exactly 6 running containers across the nodes for 3 s");
	await allAlive(lab, newLeader);
	await cli(lab, newLeader, ["service", "rm", "grow"]);
});
