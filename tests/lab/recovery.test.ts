// Quorum is never stranded, on real agents: two of three managers destroyed at once leave writes
// failing until `tsswarm init --force-new-cluster` on the survivor, which keeps every service,
// network and node, takes writes again, keeps its tasks running and admits a new manager; and a
// manager that leaves (leader or not) first hands its vote away, while the last one says what
// leaving would lose.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { waitFor } from "../helpers/index.ts";
import { type Lab, withLab } from "../helpers/lab.ts";
import {
	cli,
	containersOn,
	createSleepers,
	leaderName,
	liveRunning,
	nodeLs,
	serviceLs,
	waitPs,
} from "../helpers/services.ts";

const TOKEN = /TSWARM-1-\S+/;
const VOTER = ["Leader", "Reachable", "Unreachable"];

type View = Awaited<ReturnType<typeof nodeLs>>[number] & { role?: string };

const nodeOf = (lab: Lab, name: string) => lab.nodes.find((n) => n.name === name)!;
async function row(lab: Lab, on: string, name: string): Promise<View | undefined> {
	const addr = `${nodeOf(lab, name).address}:`;
	return ((await nodeLs(lab, on)) as View[]).find((v) => v.addr.startsWith(addr));
}
/** The lab nodes that `on` lists as Raft voters (a MANAGER STATUS other than Catching up), by name. */
/** The index a node's replica has applied (`tsswarm info`). */
async function appliedIndex(lab: Lab, on: string): Promise<number> {
	const info = JSON.parse(await cli(lab, on, ["info", "--format", "json"])) as { raft: { index: number } | null };
	return info.raft?.index ?? 0;
}
async function voters(lab: Lab, on: string): Promise<string[]> {
	const view = await nodeLs(lab, on);
	return lab.nodes
		.filter((n) => view.some((v) => v.addr.startsWith(`${n.address}:`) && VOTER.includes(v.managerStatus ?? "")))
		.map((n) => n.name)
		.sort();
}

t.test("2 of 3 managers destroyed: --force-new-cluster on the survivor restores management", async (t) => {
	const t0 = Date.now();
	// n1 init, n2 n3 managers, n4 n5 workers.
	const lab = await withLab(t, { nodes: 5, cluster: true, registry: true });
	t.comment(`lab up: ${Date.now() - t0} ms`);
	// Autopilot would make n4 and n5 voters too (5 nodes may vote): this test is about losing 2 of 3.
	for (const n of ["n4", "n5"]) await cli(lab, "n1", ["node", "update", "--role", "worker", n]);
	await waitFor("n4 and n5 back to workers", async () => (await voters(lab, "n1")).join() === "n1,n2,n3", {
		timeoutMs: 90_000,
		intervalMs: 500,
	});
	t.same(await voters(lab, "n1"), ["n1", "n2", "n3"], "control: three voters");
	await cli(lab, "n1", ["network", "create", "-d", "overlay", "appnet"]);
	await createSleepers(lab, "keep", 4);
	await waitPs(lab, "n1", "keep", "4 running", (rs) => liveRunning(rs).length === 4, 120_000);
	const before = await serviceLs(lab, "n1");
	const containers = new Map<string, string[]>();
	for (const n of ["n1", "n4"])
		containers.set(
			n,
			(await containersOn(lab, n, "keep", { running: true })).map((c) => c.id),
		);
	t.comment(`containers of keep before: ${JSON.stringify(Object.fromEntries(containers))}`);

	// Killed at once; they come back with their old data only at the end.
	await Promise.all([lab.stop("n2", { kill: true }), lab.stop("n3", { kill: true })]);
	// Once n1 knows no leader (a leader without a quorum steps down), a write cannot even be proposed.
	await waitFor(
		"n1 to know no leader",
		async () =>
			(JSON.parse(await cli(lab, "n1", ["info", "--format", "json"])) as { leader: string | null }).leader === null,
		{ timeoutMs: 30_000, intervalMs: 500 },
	);
	const write = await lab.tsswarm("n1", ["network", "create", "-d", "overlay", "during"]);
	t.not(write.code, 0, `control: with no quorum a write fails (${write.stderr.trim().split("\n").at(-1)})`);
	t.match(write.stderr, /leader|majority|quorum|timed out/i, "saying there is no leader");

	// A plain leave cannot hand the vote to anyone now: it refuses and the node stays.
	let since = Date.now();
	const stay = await lab.tsswarm("n1", ["leave"]);
	t.equal(stay.code, 1, "with no quorum a manager's plain leave refuses");
	t.match(stay.stderr, /cannot hand this manager's vote away/, `saying why (${Date.now() - since} ms)`);
	t.equal((await nodeLs(lab, "n1")).length, 5, "control: n1 is still in the cluster");

	since = Date.now();
	const rec = await lab.tsswarm("n1", ["init", "--force-new-cluster"]);
	const recoverMs = Date.now() - since;
	t.equal(rec.code, 0, `init --force-new-cluster: ${rec.stderr.trim()}`);
	t.comment(`${rec.stdout.trim()}\n(${recoverMs} ms)`);
	t.match(rec.stdout, /recovered: node \S+ is now its only manager/);
	t.match(rec.stdout, /Kept: 1 service\(s\), 2 network\(s\), 5 node\(s\)/, "every record kept");
	t.match(rec.stdout, /No longer in the Raft configuration: n[23] \(\S+\), n[23] \(\S+\)/, "the two lost voters named");

	since = Date.now();
	await cli(lab, "n1", ["network", "create", "-d", "overlay", "after"]);
	t.comment(`first write after recovery acknowledged ${Date.now() - since} ms after the command returned`);
	t.same(await voters(lab, "n1"), ["n1"], "n1 is the only voter");
	const after = await serviceLs(lab, "n1");
	t.same(
		after.map((s) => [s.id, s.name, s.desired]),
		before.map((s) => [s.id, s.name, s.desired]),
		"service ls: the same services",
	);
	const nets = JSON.parse(await cli(lab, "n1", ["network", "ls", "--format", "json"])) as Array<{ Name: string }>;
	t.same(nets.map((n) => n.Name).sort(), ["after", "appnet", "ingress"], "the networks, and the new one");
	for (const n of ["n2", "n3"]) {
		const r = await row(lab, "n1", n);
		t.equal(r?.role, "manager", `${n}'s record stays (a manager record, for autopilot or node rm)`);
		t.equal(r?.managerStatus ?? "", "", `${n} is no voter any more`);
	}
	for (const [n, ids] of containers) {
		const now = (await containersOn(lab, n, "keep", { running: true })).map((c) => c.id);
		t.ok(
			ids.every((id) => now.includes(id)),
			`${n}: the tasks' containers kept running through the recovery`,
		);
	}
	// The leader's loops run again: the replicas of the destroyed nodes are replaced on the others.
	since = Date.now();
	await waitPs(
		lab,
		"n1",
		"keep",
		"4 running off n2 and n3",
		(rs) => liveRunning(rs).filter((r) => r.node !== "n2" && r.node !== "n3").length === 4,
		120_000,
	);
	t.comment(`replicas of n2 and n3 replaced ${Date.now() - since} ms later`);

	// The new configuration is durable: n1's agent restarted is still the only voter, with everything.
	t.equal(await lab.stop("n1"), true, "lab stop n1 (SIGTERM)");
	t.equal(await lab.start("n1"), true, "lab start n1");
	await waitFor("n1 to lead again", async () => (await leaderName(lab, "n1").catch(() => "")) === "n1", {
		timeoutMs: 60_000,
		intervalMs: 500,
	});
	t.same(await voters(lab, "n1"), ["n1"], "restarted, n1 is still the only voter");
	t.same(
		(await serviceLs(lab, "n1")).map((s) => s.name),
		["keep"],
		"and still has the service",
	);
	await cli(lab, "n1", ["network", "create", "-d", "overlay", "restarted"]);
	t.pass("and takes a write after its restart");

	// A fresh manager through the survivor (which holds the cluster key: it ran init).
	const left = await lab.tsswarm("n5", ["leave"]);
	t.equal(left.code, 0, `n5 (a worker) leaves, to join again from scratch: ${left.stderr.trim()}`);
	const n5log = join(nodeOf(lab, "n5").dir, "agent.log");
	const logFrom = readFileSync(n5log).length;
	const token = TOKEN.exec(await cli(lab, "n1", ["join-token", "manager"]))?.[0];
	t.ok(token, "the survivor prints a manager token");
	const joinedAt = Date.now();
	const joined = await cli(lab, "n5", ["join", "--token", token!, `${nodeOf(lab, "n1").address}:2377`]);
	t.match(joined, /as a manager\.\nIts Raft replica catches up as a non-voter/, "join says how it gets its vote");
	// A joining manager catches up as a non-voter (autopilot's stabilization is 10 s): the first
	// status node ls shows for it is Catching up, and meanwhile writes do not wait for it.
	const first = await waitFor(
		"n5 in the Raft configuration",
		async () => (await row(lab, "n1", "n5"))?.managerStatus || undefined,
		{
			timeoutMs: 30_000,
			intervalMs: 200,
		},
	);
	t.equal(first, "Catching up", "n5 is a non-voter first");
	since = Date.now();
	await cli(lab, "n1", ["network", "create", "-d", "overlay", "while-n5-catches-up"]);
	t.comment(`a write while n5 catches up: ${Date.now() - since} ms`);
	t.same(await voters(lab, "n1"), ["n1"], "that write needed no vote of n5's");
	await waitFor("n5 a voter", async () => (await voters(lab, "n1")).join() === "n1,n5", {
		timeoutMs: 60_000,
		intervalMs: 500,
	});
	t.pass(`n5 joined as a manager and votes, ${Date.now() - joinedAt} ms after its join`);
	// With two voters every write needs n5's replica. It once installed the survivor's recovery
	// snapshot, read its own old worker record from it, deleted its replica and started empty under
	// the same id, and the leader never sent it anything again: writes hung.
	since = Date.now();
	await cli(lab, "n1", ["network", "create", "-d", "overlay", "two-voters"]);
	t.comment(`a write through the two voters: ${Date.now() - since} ms`);
	const target = await appliedIndex(lab, "n1");
	await waitFor(`n5's replica to reach index ${target}`, async () => (await appliedIndex(lab, "n5")) >= target, {
		timeoutMs: 30_000,
		intervalMs: 500,
	});
	t.pass(`n5's replica caught up to ${target}`);
	const since5 = readFileSync(n5log).subarray(logFrom).toString();
	t.equal(since5.match(/"msg":"raft started"/g)?.length, 1, "n5 started its replica once since it joined");
	t.notMatch(since5, /"this node is a worker now/, "and never demoted itself");

	// The two lost managers come back with their old data: their configuration is still {n1,n2,n3},
	// so together they could elect a leader and run a second cluster. n1 (which ran the recovery)
	// fences them: each stops its old replica and becomes a worker of the recovered cluster, and
	// autopilot grows the voters back to three.
	const logAt = new Map(["n2", "n3"].map((n) => [n, readFileSync(join(nodeOf(lab, n).dir, "agent.log")).length]));
	since = Date.now();
	await Promise.all(["n2", "n3"].map((n) => lab.start(n)));
	for (const n of ["n2", "n3"])
		await waitFor(
			`${n} to be fenced`,
			async () =>
				readFileSync(join(nodeOf(lab, n).dir, "agent.log"))
					.subarray(logAt.get(n))
					.toString()
					.includes("fenced: a recovery left this manager out"),
			{ timeoutMs: 90_000, intervalMs: 500 },
		);
	t.comment(`n2 and n3 fenced ${Date.now() - since} ms after they were started again`);
	type Info = { nodeId: string; raft: { leader: string | null } | null };
	const info = async (n: string) => JSON.parse(await cli(lab, n, ["info", "--format", "json"])) as Info;
	// One cluster: every node that runs a replica follows the same leader, a server of the
	// recovered cluster (n2 or n3 may become one again, through autopilot, with a fresh replica).
	const oneLeader = async () => {
		const views = await Promise.all(["n1", "n2", "n3", "n5"].map(info));
		const leaders = new Set(views.filter((v) => v.raft).map((v) => v.raft!.leader));
		return leaders.size === 1 && !leaders.has(null) ? [...leaders][0]! : undefined;
	};
	const leader = await waitFor("one leader that every replica follows", oneLeader, {
		timeoutMs: 60_000,
		intervalMs: 500,
	});
	const names = new Map(await Promise.all(lab.nodes.map(async (n) => [(await info(n.name)).nodeId, n.name] as const)));
	t.comment(`every replica follows ${names.get(leader)}`);
	// n1 (role auto) may lose its vote now: n2 and n3 are pinned managers (the manager token) and
	// n5 was promoted, so autopilot demotes n1 once they all vote. Ask the leader of the moment.
	const leaderNow = async () => names.get((await oneLeader()) ?? "");
	await waitFor(
		"a write through the recovered cluster's leader",
		async () => {
			const on = await leaderNow();
			if (!on) return undefined;
			const r = await lab.tsswarm(on, ["network", "create", "-d", "overlay", "after-fencing"]);
			return r.code === 0 || /already exists/.test(r.stderr) || undefined;
		},
		{ timeoutMs: 30_000, intervalMs: 500 },
	);
	const services = await waitFor(
		"the leader's service list",
		async () => {
			const on = await leaderNow();
			return on ? (await serviceLs(lab, on).catch(() => undefined))?.map((s) => s.name) : undefined;
		},
		{ timeoutMs: 30_000, intervalMs: 500 },
	);
	t.same(services, ["keep"], "the recovered cluster's state stands");
	since = Date.now();
	// Read on the leader: n1 may be a worker by now, whose `node ls` shows no Raft status.
	const regrown = await waitFor(
		"three voters again",
		async () => {
			const on = await leaderNow().catch(() => undefined);
			const v = on ? await voters(lab, on).catch(() => []) : [];
			return v.length === 3 ? v : undefined;
		},
		{ timeoutMs: 120_000, intervalMs: 1000 },
	);
	t.comment(`voters ${regrown.join(",")} ${Date.now() - since} ms after the fencing`);
	// A returning manager that votes again holds the recovered cluster's history (written after n2
	// and n3 were killed), not its old replica.
	for (const n of regrown.filter((x) => x === "n2" || x === "n3"))
		await waitFor(
			`${n} to list the networks written after the recovery`,
			async () => {
				const names = (
					JSON.parse(await cli(lab, n, ["network", "ls", "--format", "json"])) as Array<{ Name: string }>
				).map((x) => x.Name);
				return ["after", "two-voters", "after-fencing"].every((x) => names.includes(x)) || undefined;
			},
			{ timeoutMs: 60_000, intervalMs: 500 },
		);
	t.ok(await waitFor("still one leader", oneLeader, { timeoutMs: 30_000, intervalMs: 500 }), "still one leader");
	t.pass("autopilot grew the voters back to three");
});

t.test("leave hands the vote away (non-leader, then leader); the last manager says what is lost", async (t) => {
	// n1 init, n2 n3 managers, n4 a worker.
	const lab = await withLab(t, { nodes: 4, cluster: true });
	// Autopilot would give n4 the vote a manager hands away: this test is about the hand-off itself.
	await cli(lab, "n1", ["node", "update", "--role", "worker", "n4"]);
	await cli(lab, "n1", ["network", "create", "-d", "overlay", "keepnet"]);
	const leader = await leaderName(lab, "n1");
	t.same(await voters(lab, leader), ["n1", "n2", "n3"], "control: three voters");

	const follower = ["n1", "n2", "n3"].find((n) => n !== leader)!;
	let since = Date.now();
	const l1 = await lab.tsswarm(follower, ["leave"]);
	t.equal(l1.code, 0, `${follower} (not the leader) leaves without --force: ${l1.stderr.trim()}`);
	t.comment(`non-leader leave: ${Date.now() - since} ms`);
	const rest = ["n1", "n2", "n3"].filter((n) => n !== follower);
	t.same(await voters(lab, leader), rest, `${follower} is out of the configuration`);
	t.equal((await row(lab, leader, follower))?.role, "worker", "its record is a worker's");
	await cli(lab, leader, ["network", "create", "-d", "overlay", "after-follower"]);
	t.pass("the two remaining voters take a write");

	const other = rest.find((n) => n !== leader)!;
	since = Date.now();
	const l2 = await lab.tsswarm(leader, ["leave"]);
	t.equal(l2.code, 0, `the leader ${leader} leaves without --force: ${l2.stderr.trim()}`);
	t.comment(`leader leave (transfer + removal): ${Date.now() - since} ms`);
	await waitFor(`${other} to lead`, async () => (await leaderName(lab, other).catch(() => "")) === other, {
		timeoutMs: 20_000,
		intervalMs: 500,
	});
	t.pass(`${other} leads now`);
	t.same(await voters(lab, other), [other], `${leader} is out of the configuration`);
	await cli(lab, other, ["network", "create", "-d", "overlay", "after-leader"]);
	t.pass(`${other} alone takes a write`);

	const refused = await lab.tsswarm(other, ["leave"]);
	t.equal(refused.code, 1, "the last manager does not leave without --force");
	t.match(refused.stderr, /last manager/);
	t.match(refused.stderr, /0 service\(s\), 4 network\(s\)/, "it says what would be lost");
	t.match(refused.stderr, /n4/, "and which node would be orphaned");
	t.notMatch(refused.stderr, new RegExp(`\\b(${follower}|${leader})\\b`), "not the nodes that left");
	t.match(refused.stderr, /--force/);
	t.equal((await nodeLs(lab, other)).length, 4, "control: it is still in the cluster");

	const forced = await lab.tsswarm(other, ["leave", "--force"]);
	t.equal(forced.code, 0, forced.stderr);
	t.comment(forced.stdout.trim());
	t.match(forced.stdout, /last manager\. Lost with it: the cluster state \(0 service\(s\), 4 network\(s\)/);
	t.match(forced.stdout, /Orphaned: 1 node\(s\) \(n4\)/);
	const info = JSON.parse(await cli(lab, other, ["info", "--format", "json"])) as { clusterId: string | null };
	t.equal(info.clusterId, null, "it is in no cluster any more");
});
