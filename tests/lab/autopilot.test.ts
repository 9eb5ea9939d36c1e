// Autopilot with real agents: 5 nodes in 3 zones join with the worker token (only n1 inits) and the
// leader picks the voters by itself, spread over the zones; a pinned worker is never promoted; a
// SIGKILLed voter is replaced within 30 s; killing voters one by one down to 2 nodes, writes go on.
import { existsSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import type { NodeView } from "../../agent/api/types.ts";
import { waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";

const ZONES = ["a", "b", "c", "a", "b"];
const THRESHOLD_S = 10;
const lab = await withLab(t, { nodes: 5, cluster: true, zones: ZONES, managers: 1 });
const zoneOf = (name: string) => ZONES[Number(name.slice(1)) - 1]!;
const killed = new Set<string>();
const alive = () => lab.nodes.map((n) => n.name).filter((n) => !killed.has(n));

/** `tsswarm ARGS` on the first alive node whose agent can answer it (a manager). */
async function onAManager(args: string[]): Promise<string> {
	const errors: string[] = [];
	for (const n of alive()) {
		const r = await lab.tsswarm(n, args);
		if (r.code === 0) return r.stdout;
		errors.push(`${n}: ${r.stderr.trim().split("\n").at(-1)}`);
	}
	throw new Error(`tsswarm ${args.join(" ")} failed everywhere: ${errors.join("; ")}`);
}

/** The node events of the last 10 minutes, one JSON object a line. */
const nodeEvents = () =>
	onAManager(["events", "--since", "10m", "--until", "0s", "--filter", "type=node", "--format", "json"]);
const ls = async (): Promise<NodeView[]> => JSON.parse(await onAManager(["node", "ls", "--format", "json"]));
const VOTING = ["Leader", "Reachable"];
const voters = (v: NodeView[]) =>
	v
		.filter((n) => VOTING.includes(n.managerStatus))
		.map((n) => n.hostname)
		.sort();
const unreachable = (v: NodeView[]) => v.filter((n) => n.managerStatus === "Unreachable").map((n) => n.hostname);
const show = (v: NodeView[]) => v.map((n) => `${n.hostname}:${n.role}:${n.managerStatus || "-"}`).join(" ");

/** Whether the pinned worker n5 ever shows as a manager while pinned (checked at every look). */
let n5Pinned = false;
let n5Promoted = "";
async function look(): Promise<NodeView[]> {
	const v = await ls();
	const n5 = v.find((n) => n.hostname === "n5");
	if (n5Pinned && n5 && (n5.role === "manager" || n5.managerStatus !== "")) n5Promoted ||= show(v);
	return v;
}

async function until(what: string, ok: (v: NodeView[]) => boolean, timeoutMs: number): Promise<NodeView[]> {
	let last: NodeView[] = [];
	try {
		return await waitFor(
			what,
			async () => {
				last = await look();
				return ok(last) ? last : undefined;
			},
			{ timeoutMs, intervalMs: 500 },
		);
	} catch (err) {
		t.comment(`last view: ${show(last)}`);
		throw err;
	}
}

let writes = 0;
/** A write through the leader (network create), retried through an election; true once acknowledged. */
async function write(t: { pass(m: string): void }, why: string): Promise<number> {
	const since = Date.now();
	const name = `w${++writes}`;
	await waitFor(
		`network create ${name} (${why})`,
		async () => (await onAManager(["network", "create", name]).catch(() => "")) !== "",
		{ timeoutMs: 45_000, intervalMs: 500 },
	);
	const ms = Date.now() - since;
	t.pass(`a write is acknowledged ${why} (${ms} ms)`);
	return ms;
}

async function kill(name: string): Promise<number> {
	t.ok(await lab.stop(name, { kill: true }), `SIGKILL ${name}'s agent`);
	killed.add(name);
	return Date.now();
}

t.test("with no command, autopilot picks voters spread over the 3 zones", async (t) => {
	const since = Date.now();
	// Short clocks for the test (defaults: 10 s stabilization, 5 min dead threshold).
	await onAManager(["swarm", "update", "--stabilization", "2s", "--dead-threshold", `${THRESHOLD_S}s`]);
	const v = await until(
		"5 voters (5 healthy nodes may vote) and nobody catching up",
		(v) => voters(v).length === 5 && !v.some((n) => n.managerStatus === "Catching up"),
		180_000,
	);
	t.comment(`5 voters ${Date.now() - since} ms after the cluster formed: ${show(v)}`);
	t.same(new Set(voters(v).map(zoneOf)), new Set(["a", "b", "c"]), "every zone has a voter");
	t.ok(
		v.every((n) => n.role === "manager"),
		"their records say manager",
	);
	const events = await nodeEvents();
	t.match(events, /"reason":"promoted/, "the promotions are events with their reason");
	t.match(events, /"reason":"voter.*caught up and healthy/, "and so are the votes given");
});

t.test("a node pinned to worker is demoted, and the voters are 3, one per zone", async (t) => {
	t.match(await onAManager(["node", "update", "n5", "--role", "worker"]), /n5/);
	const v = await until(
		"3 voters in 3 zones, n5 not among them",
		(v) => voters(v).length === 3 && new Set(voters(v).map(zoneOf)).size === 3 && !voters(v).includes("n5"),
		120_000,
	);
	t.comment(show(v));
	t.equal(v.find((n) => n.hostname === "n5")?.role, "worker", "n5's record says worker");
	const inspect = JSON.parse(await onAManager(["node", "inspect", "n5"])) as Array<{ rolePreference: string }>;
	t.equal(inspect[0]?.rolePreference, "worker", "node inspect shows the pinned preference");
	// A demoted node keeps no manager keys (the cluster secret opens every secret in the store).
	const files = (name: string) => {
		const dir = lab.nodes.find((n) => n.name === name)!.dir;
		return { keys: existsSync(join(dir, "cluster", "keys")), raft: existsSync(join(dir, "raft")) };
	};
	await waitFor("n5's keys and replica removed", async () => !files("n5").keys && !files("n5").raft, {
		timeoutMs: 30_000,
	});
	t.pass("the demoted n5 holds no keys file and no Raft replica");
	// Out of the configuration too (a demoted voter is a non-voter until its log holds its worker
	// record): from now on any Raft status or manager record of n5 is a promotion it must not get.
	await until(
		"n5 out of the Raft configuration",
		(v) => v.find((n) => n.hostname === "n5")?.managerStatus === "",
		30_000,
	);
	n5Pinned = true;
	const voter = voters(v)[0]!;
	t.same(files(voter), { keys: true, raft: true }, `control: the voter ${voter} holds both`);
	const events = await nodeEvents();
	t.match(events, /"reason":"demoted: (pinned to the worker role|more voters than)/, "the demotions are events");
	const bad = await onAManager(["node", "update", "n5", "--role", "boss"]).catch((e: Error) => e.message);
	t.match(bad, /invalid --role "boss": use auto, manager or worker/, "a bad role is refused clearly");
});

t.test("SIGKILL of a voter: a replacement voter within 30 s; never the pinned worker", async (t) => {
	const before = await look();
	// The zone-b voter: n5 (zone b) is pinned worker, so the replacement must come from elsewhere.
	const victim = voters(before).find((n) => zoneOf(n) === "b" && n !== "n5")!;
	t.ok(victim, `the zone-b voter is ${victim}`);
	const at = await kill(victim);
	const v = await until(
		`a new voter beside ${victim} (unreachable)`,
		(v) => voters(v).length === 3 && !voters(v).includes(victim),
		30_000,
	);
	const ms = Date.now() - at;
	t.comment(`replacement voter shown by node ls ${ms} ms after SIGKILL: ${show(v)}`);
	t.ok(ms <= 30_000, "within 30 s");
	t.notOk(voters(v).includes("n5"), "not the pinned worker");
	await write(t, `after ${victim} was killed`);
	t.equal(n5Promoted, "", "n5 was never a manager while pinned");
});

t.test("kill voters one at a time down to 2 nodes: writes succeed at every step", async (t) => {
	t.match(await onAManager(["node", "update", "n5", "--role", "auto"]), /n5/);
	n5Pinned = false;
	for (const step of [0, 1]) {
		const n = alive().length;
		const steady = await until(
			`${n} nodes: 3 voters, the dead ones removed (threshold ${THRESHOLD_S} s)`,
			(v) => voters(v).length === 3 && unreachable(v).length === 0,
			120_000,
		);
		t.comment(`step ${step}, ${n} nodes alive: ${show(steady)}`);
		await write(t, `with ${n} nodes`);
		// The leader the first time (a new leader's autopilot takes over), a follower the second.
		const leader = steady.find((x) => x.managerStatus === "Leader")!.hostname;
		const victim = step === 0 ? leader : voters(steady).find((x) => x !== leader)!;
		const at = await kill(victim);
		await write(t, `right after ${victim} (${step === 0 ? "the leader" : "a voter"}) was killed`);
		t.comment(`first write ${Date.now() - at} ms after SIGKILL of ${victim}`);
	}
	// Two nodes left, both voters: the third (dead) voter stays past the threshold (minQuorum 3).
	const last = await until("2 nodes: both vote", (v) => voters(v).length === 2, 60_000);
	t.same(voters(last), alive().sort(), "the two alive nodes are the voters");
	await new Promise((r) => setTimeout(r, (THRESHOLD_S + 5) * 1000));
	const after = await look();
	t.equal(unreachable(after).length, 1, "the dead voter is kept: removing it would go below minQuorum 3");
	await write(t, "with 2 nodes left");
});

t.test("a voter removed while it was down comes back as a worker, then votes again", async (t) => {
	// The first victim was removed from the configuration (and its record made worker) while down;
	// it restarts with its old replica, learns from the others that it is a worker, and autopilot
	// promotes it again: 3 voters, and the dead one beyond minQuorum is removed.
	const first = [...killed][0]!;
	t.ok(await lab.start(first), `lab start ${first}`);
	killed.delete(first);
	const since = Date.now();
	const v = await until(
		`${first} votes again and no dead voter is left`,
		(v) => voters(v).length === 3 && voters(v).includes(first) && unreachable(v).length === 0,
		180_000,
	).catch(async (err) => {
		for (const n of alive()) t.comment(`${n}: ${(await lab.tsswarm(n, ["info"])).stdout.replace(/\n/g, " |")}`);
		throw err;
	});
	t.comment(`${first} a voter again ${Date.now() - since} ms after its restart: ${show(v)}`);
	await write(t, `with ${first} back`);
});
