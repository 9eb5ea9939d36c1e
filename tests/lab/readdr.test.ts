// Identity is the key, not the address (issue 15): on a real 4-node cluster lab (3 managers, one
// worker), a voter and the worker each come back on a new underlay address (as after a DHCP
// renewal: `lab start NODE --addr IP`). Every node's `node ls` shows the new addresses, the voter
// votes again (with another voter stopped, a write needs it), and the worker runs a replica; so
// does the init node, which has no saved seeds (it finds the others through its directory).
import t from "tap";
import { checkNewAddress, LabError } from "../../cli/lab/index.ts";
import { waitFor } from "../helpers/index.ts";
import { type Lab, withLab } from "../helpers/lab.ts";
import { BUSYBOX, cli, hostsVia, leaderName, liveRunning, nodeLs, servicePs, waitPs } from "../helpers/services.ts";

/** Membership learns the new address in about a second; the record follows through the leader. */
const FOLLOW_BUDGET_MS = 30_000;
const MANAGERS = ["n1", "n2", "n3"];
type Tap = Pick<typeof t, "comment" | "equal" | "match">;

const t0 = Date.now();
const lab = await withLab(t, { nodes: 4, cluster: true, registry: true });
t.comment(`lab up --cluster --registry (4 nodes): ${Date.now() - t0} ms`);

const idOf = async (on: string) =>
	((await cli(lab, on, ["info", "--format", "json"]).then((s) => JSON.parse(s))) as { nodeId: string }).nodeId;

/** Waits until every running node's `node ls` lists `id` alive at `addr`; returns how long it took. */
async function everyoneSees(lab: Lab, id: string, addr: string, skip: string[] = []): Promise<number> {
	const since = Date.now();
	for (const n of lab.nodes.filter((x) => !skip.includes(x.name))) {
		await waitFor(
			`${n.name}'s node ls to list ${id.slice(-6)} alive at ${addr}`,
			async () => {
				const v = (await nodeLs(lab, n.name)).find((x) => x.id === id);
				return v?.addr === addr && v.state === "alive";
			},
			{ timeoutMs: FOLLOW_BUDGET_MS, intervalMs: 250 },
		);
	}
	return Date.now() - since;
}

/**
 * With a voter other than `victim` and the leader stopped, a write through `victim` is acknowledged:
 * the majority of the three needs its vote. Returns the leader and the voter it stopped.
 */
async function itVotes(t: Tap, victim: string, net: string): Promise<{ now: string; other: string }> {
	const id = ids.get(victim)!;
	const now = await leaderName(lab, "n1");
	const other = MANAGERS.find((n) => n !== victim && n !== now)!;
	await waitFor(
		`${now} to count ${victim} as a reachable voter`,
		async () => (await nodeLs(lab, now)).find((x) => x.id === id)?.managerStatus?.match(/reachable|leader/i),
		{ timeoutMs: FOLLOW_BUDGET_MS, intervalMs: 250 },
	);
	t.equal(await lab.stop(other), true, `lab stop ${other}: two voters of three left, ${victim} one of them`);
	const w0 = Date.now();
	await waitFor(
		`a write through ${victim} with ${other} down`,
		async () => (await lab.tsswarm(victim, ["network", "create", "--driver", "overlay", net])).code === 0,
		{ timeoutMs: 60_000, intervalMs: 1000 },
	);
	t.comment(`write through ${victim} acknowledged ${Date.now() - w0} ms after ${other} stopped`);
	t.match(await cli(lab, now, ["network", "ls"]), new RegExp(net), `the write is on ${now} too`);
	return { now, other };
}

const ids = new Map<string, string>();

t.before(async () => {
	for (const n of lab.nodes) ids.set(n.name, await idOf(n.name));
	// n4 stays the worker: autopilot would give it the seat of a voter stopped below.
	await cli(lab, "n1", ["node", "update", "--role", "worker", "n4"]);
});

t.test("lab start --addr: refuses an address outside the lab, one in use, and a running agent", async (t) => {
	const n2 = lab.nodes[1]!;
	for (const [addr, re] of [
		["10.0.0.2", /underlay is 198\.18\.0\.0\/16/],
		["198.18.0.1", /n1 has it/],
		["198.18.0.254", /registry has it/],
		["198.18.300.1", /underlay/],
	] as const)
		t.throws(() => checkNewAddress(lab.record, n2, addr), re, `${addr} refused`);
	t.equal(checkNewAddress(lab.record, n2, "198.18.1.2"), "198.18.1.2", "a free one is taken (positive control)");
	await t.rejects(lab.start("n2", { addr: "198.18.1.2" }), /its agent runs; lab stop it first/);
	const err = await lab.start("n2", { addr: "198.18.1.2" }).catch((e: unknown) => e);
	t.ok(err instanceof LabError && err.code === "ERR_LAB_ADDR", "a LabError with code ERR_LAB_ADDR");
	t.equal(lab.nodes[1]!.address, "198.18.0.2", "and nothing moved");
});

t.test("a voter restarted on a new address rejoins, is listed there everywhere, and votes", async (t) => {
	const leader = await leaderName(lab, "n1");
	const victim = MANAGERS.find((n) => n !== leader)!;
	const id = ids.get(victim)!;
	const old = lab.nodes.find((n) => n.name === victim)!.address;
	t.equal(
		(await nodeLs(lab, "n4")).find((x) => x.id === id)?.addr,
		`${old}:2377`,
		`control: the worker lists ${victim} at its old address`,
	);

	t.equal(await lab.stop(victim), true, `lab stop ${victim}`);
	const next = `198.18.1.${victim.slice(1)}`;
	const since = Date.now();
	t.equal(await lab.start(victim, { addr: next }), true, `lab start ${victim} --addr ${next}`);
	t.equal(lab.nodes.find((n) => n.name === victim)!.address, next, "the lab record has the new address");
	const r = await lab.exec(victim, ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
	t.match(r.stdout, new RegExp(`inet ${next.replaceAll(".", "\\.")}/16`), "its eth0 has it");
	t.notMatch(r.stdout, new RegExp(`inet ${old.replaceAll(".", "\\.")}/`), "and not the old one");

	await everyoneSees(lab, id, `${next}:2377`);
	t.comment(
		`${victim} back at ${next}: every node's node ls shows it alive there ${Date.now() - since} ms after the start`,
	);
	t.pass(`every node lists ${victim} alive at ${next}:2377`);
	const inspect = JSON.parse(await cli(lab, "n1", ["node", "inspect", id])) as Array<{ Status?: { Addr?: string } }>;
	t.match(JSON.stringify(inspect), `${next}:2377`, "node inspect shows the new address");

	// It votes: with one of the other two voters stopped, a write needs it.
	const { now, other } = await itVotes(t, victim, "readdr-net");
	// Positive control: without the moved voter there is no majority, and the write fails.
	t.equal(await lab.stop(victim), true, `lab stop ${victim}`);
	const refused = await lab.tsswarm(now, ["network", "create", "--driver", "overlay", "readdr-net2"]);
	t.not(
		refused.code,
		0,
		`control: with ${victim} and ${other} down, a write fails (${refused.stderr.trim().slice(-80)})`,
	);
	// Back to three voters for the next test (the moved one at its new address still).
	t.equal(await lab.start(victim), true, `lab start ${victim} (at ${next})`);
	t.equal(await lab.start(other), true, `lab start ${other}`);
	for (const m of MANAGERS)
		await everyoneSees(lab, ids.get(m)!, `${lab.nodes.find((n) => n.name === m)!.address}:2377`);
});

t.test("a worker restarted on a new address runs a replica and serves its logs", async (t) => {
	const id = ids.get("n4")!;
	t.equal(await lab.stop("n4"), true, "lab stop n4");
	const since = Date.now();
	t.equal(await lab.start("n4", { addr: "198.18.1.4" }), true, "lab start n4 --addr 198.18.1.4");
	const took = await everyoneSees(lab, id, "198.18.1.4:2377");
	t.comment(
		`n4 at its new address on every node's node ls ${Date.now() - since} ms after the start (${took} ms waiting)`,
	);
	await cli(lab, "n1", [
		"service",
		"create",
		"--quiet",
		"--name",
		"moved",
		"--constraint",
		"node.hostname==n4",
		"--stop-grace-period",
		"1s",
		BUSYBOX,
		"sh",
		"-c",
		"echo hello-from-moved-n4; sleep 3600",
	]);
	const rows = await waitPs(
		lab,
		"n2",
		"moved",
		"its replica running on n4",
		(rs) => liveRunning(rs).length === 1,
		120_000,
	);
	t.equal(liveRunning(rows)[0]?.node, "n4", "the replica runs on the moved worker");
	t.ok(
		liveRunning(await servicePs(lab, "n3", "moved")).length === 1,
		"and its status (reported by n4 to the leader) is seen on another manager",
	);
	const logs = await waitFor(
		"service logs from n4",
		async () => {
			const r = await lab.tsswarm("n1", ["service", "logs", "moved"]);
			return r.code === 0 && r.stdout.includes("hello-from-moved-n4") ? r.stdout : undefined;
		},
		{ timeoutMs: 30_000, intervalMs: 1000 },
	);
	t.match(logs, /hello-from-moved-n4/, "service logs on a manager reads the task's log from n4 at its new address");
});

t.test("a moved worker's overlay: its task reaches a task on another node again", async (t) => {
	const id = ids.get("n4")!;
	const httpd = BUSYBOX.replace(/busybox:latest$/, "httpd:latest");
	await cli(lab, "n1", ["network", "create", "-d", "overlay", "readdr-ov"]);
	for (const [name, node, image, ...cmd] of [
		["ovweb", "n2", httpd],
		["ovclient", "n4", BUSYBOX, "sleep", "3600"],
	] as const)
		await cli(lab, "n1", [
			"service",
			"create",
			"--quiet",
			"--name",
			name,
			"--network",
			"readdr-ov",
			"--constraint",
			`node.hostname==${node}`,
			"--stop-grace-period",
			"1s",
			image,
			...cmd,
		]);
	const [client] = liveRunning(
		await waitPs(lab, "n1", "ovclient", "the client running on n4", (rs) => liveRunning(rs).length === 1, 120_000),
	);
	await waitPs(lab, "n1", "ovweb", "the web task running on n2", (rs) => liveRunning(rs).length === 1, 120_000);
	const inClient = (cmd: string) => lab.tsswarm("n4", ["exec", `${client!.name}.${client!.id}`, "sh", "-c", cmd]);
	const reach = async () => (await hostsVia(inClient, "http://ovweb/", 1))[0] !== "failed" || undefined;
	await waitFor("the client to reach ovweb over the overlay", reach, { timeoutMs: 60_000, intervalMs: 1000 });
	t.pass("control: before the move, n4's task reaches n2's over the overlay");

	t.equal(await lab.stop("n4"), true, "lab stop n4");
	t.equal(await lab.start("n4", { addr: "198.18.2.4" }), true, "lab start n4 --addr 198.18.2.4");
	await everyoneSees(lab, id, "198.18.2.4:2377");
	const since = Date.now();
	await waitFor("the client to reach ovweb again", reach, { timeoutMs: 60_000, intervalMs: 1000 });
	t.comment(`n4's task reaches n2's over the overlay ${Date.now() - since} ms after every node lists n4's new address`);
	const [after] = liveRunning(await servicePs(lab, "n1", "ovclient"));
	t.equal(after?.id, client!.id, "the same task (its container kept running through the move)");
});

t.test("the init node (no saved seeds) restarted on a new address finds the cluster and votes", async (t) => {
	const id = ids.get("n1")!;
	t.equal(await lab.stop("n1"), true, "lab stop n1");
	const since = Date.now();
	t.equal(await lab.start("n1", { addr: "198.18.1.1" }), true, "lab start n1 --addr 198.18.1.1");
	await everyoneSees(lab, id, "198.18.1.1:2377");
	t.comment(`n1 at its new address on every node's node ls ${Date.now() - since} ms after the start`);
	const { other } = await itVotes(t, "n1", "readdr-net3");
	t.equal(await lab.start(other), true, `lab start ${other}`);
});
