// Services through node failures on a real 3-node cluster lab: a node SIGKILLed loses its replicas
// to the others within the down grace period plus a start, and coming back adds no duplicate; an
// agent SIGKILLed and started again re-adopts its running containers instead of starting new ones.
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

/** Down after 3 missed 1 s heartbeats, replaced after the 5 s grace (agent defaults), plus a start. */
const MOVE_BUDGET_MS = 3000 + 5000 + 10_000;

const t0 = Date.now();
const lab = await withLab(t, { nodes: 3, cluster: true, registry: true });
t.comment(`lab up --cluster --registry: ${Date.now() - t0} ms`);

t.test("a node SIGKILLed: its replica runs elsewhere in time; back, it adds no duplicate", async (t) => {
	await createSleepers(lab, "mover", 3);
	const leader = await leaderName(lab, "n1");
	const victim = lab.nodes.map((n) => n.name).find((n) => n !== leader)!;
	const witness = lab.nodes.map((n) => n.name).find((n) => n !== victim)!;
	const lost = liveRunning(await servicePs(lab, witness, "mover")).filter((r) => r.node === victim);
	t.equal(lost.length, 1, `control: ${victim} runs one replica`);
	const oldContainer = (await containersOn(lab, victim, "mover", { running: true }))[0];
	t.ok(oldContainer, `control: its container runs on ${victim}`);

	const since = Date.now();
	t.equal(await lab.stop(victim, { kill: true }), true, `lab stop ${victim} --kill`);
	const moved = await waitPs(
		lab,
		witness,
		"mover",
		`3 running off ${victim}`,
		(rs) => liveRunning(rs).filter((r) => r.node !== victim).length === 3,
		MOVE_BUDGET_MS + 20_000,
	);
	const took = Date.now() - since;
	t.comment(`replica of a SIGKILLed node running elsewhere after ${took} ms (budget ${MOVE_BUDGET_MS} ms)`);
	t.ok(took <= MOVE_BUDGET_MS, `moved within grace + start (${took} ms)`);
	t.equal(moved.find((r) => r.id === lost[0]!.id)?.desiredState, "shutdown", "the lost task is shut down");
	t.match(moved.find((r) => r.id === lost[0]!.id)?.state, /orphaned|shutdown/, "and marked as such");

	// Its container outlived its agent (as a stopped agent's containers do); started again, the
	// agent learns its task is gone and stops it: 3 in all, not 4.
	t.equal(
		(await containersOn(lab, victim, "mover", { running: true }))[0]?.id,
		oldContainer!.id,
		`control: the old container still runs on ${victim} while its agent is dead`,
	);
	const back = Date.now();
	t.equal(await lab.start(victim), true, `lab start ${victim}`);
	await waitFor(
		"3 running containers of mover in all",
		async () => total(await runningEverywhere(lab, "mover")) === 3,
		{
			timeoutMs: 60_000,
			intervalMs: 1000,
		},
	);
	t.comment(`${victim} back: its stale container stopped ${Date.now() - back} ms after lab start`);
	t.same(await holds(lab, "mover"), [3], "mover: exactly 3 running containers across the nodes for 3 s");
	t.equal(liveRunning(await servicePs(lab, "n1", "mover")).length, 3, "service ps: 3 running");
	await allAlive(lab, "n1");
	await cli(lab, "n1", ["service", "rm", "mover"]);
});

t.test("an agent SIGKILLed and started again re-adopts its containers", async (t) => {
	await createSleepers(lab, "adopt", 3);
	const leader = await leaderName(lab, "n1");
	const node = lab.nodes.map((n) => n.name).find((n) => n !== leader)!;
	const before = (await containersOn(lab, node, "adopt")).map((c) => `${c.id} ${c.status}`);
	t.equal(before.length, 1, `control: one container of adopt on ${node}`);
	const tasksBefore = (await servicePs(lab, leader, "adopt")).map((r) => r.id).sort();

	const since = Date.now();
	t.equal(await lab.stop(node, { kill: true }), true, `lab stop ${node} --kill`);
	t.equal(await lab.start(node), true, `lab start ${node}`);
	await waitFor(
		`${node}'s agent to answer`,
		async () => (await lab.tsswarm(node, ["service", "ls", "--format", "json"])).code === 0,
		{ timeoutMs: 60_000, intervalMs: 1000 },
	);
	t.comment(`${node}'s agent killed and answering again after ${Date.now() - since} ms`);
	// Give its worker a session (heartbeats) and a complete assignment set: then it adopted or not.
	await allAlive(lab, leader);
	await waitPs(lab, leader, "adopt", "3 running", (rs) => liveRunning(rs).length === 3);
	t.same(await holds(lab, "adopt"), [3], "adopt: exactly 3 running containers across the nodes for 3 s");
	t.same(
		(await containersOn(lab, node, "adopt")).map((c) => `${c.id} ${c.status}`),
		before,
		"the same container runs, and no new one was made",
	);
	t.same((await servicePs(lab, leader, "adopt")).map((r) => r.id).sort(), tasksBefore, "the same tasks, none new");
	// The agent really holds it again: removing the service stops and removes that container.
	await cli(lab, leader, ["service", "rm", "adopt"]);
	await waitFor(
		`adopt's container on ${node} to be removed`,
		async () => !(await containersOn(lab, node, "adopt")).length,
		{
			timeoutMs: 30_000,
			intervalMs: 1000,
		},
	);
	t.pass("rm removed the re-adopted container");
});
