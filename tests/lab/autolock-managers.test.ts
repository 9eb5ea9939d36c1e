// Autolock with three managers: a restarted, locked manager takes no part in Raft (the other two
// commit without it and its Raft dir does not move; with one of them down there is no quorum), and
// once unlocked it votes again and catches up on what was written while it was locked.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { call } from "../../agent/api/index.ts";
import { type LabAgent, startAgent } from "../helpers/agents.ts";
import { waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import { cli, nodeLs } from "../helpers/services.ts";

const lab = await withLab(t, { nodes: 3 });
const dir = (node: string) => lab.nodes.find((n) => n.name === node)!.dir;
const addr = (node: string) => lab.nodes.find((n) => n.name === node)!.address;
const agents = new Map<string, LabAgent>();
/** Starts a node's agent and waits until its API answers (its socket may exist a moment before). */
const start = async (node: string) => {
	agents.set(node, await startAgent(lab, node));
	await waitFor(`${node}'s API`, () => call(dir(node), "GET", "/v1/info").catch(() => undefined), {
		timeoutMs: 20_000,
		intervalMs: 200,
	});
};
t.teardown(async () => {
	for (const a of agents.values()) await a.stop("SIGKILL");
});

function files(d: string): string[] {
	return readdirSync(d, { withFileTypes: true }).flatMap((e) =>
		e.isDirectory() ? files(join(d, e.name)) : [join(d, e.name)],
	);
}
const fingerprint = (node: string) =>
	files(join(dir(node), "raft"))
		.map((f) => `${f}:${statSync(f).size}:${statSync(f).mtimeMs}`)
		.sort()
		.join("\n");
const networks = (node: string) => call<Array<{ Name: string }>>(dir(node), "GET", "/v1/networks", undefined, 10_000);
/** `network create NAME` on `node`, retried while a leader is being elected; resolves when it is written. */
const createNet = (node: string, name: string, timeoutMs: number) =>
	waitFor(
		`network create ${name} on ${node}`,
		async () => (await lab.tsswarm(node, ["network", "create", name])).code === 0 || undefined,
		{ timeoutMs, intervalMs: 1000 },
	);

t.test("a locked manager votes nothing; unlocked, it votes again and catches up", async (t) => {
	for (const n of ["n1", "n2", "n3"]) await start(n);
	const init = await lab.tsswarm("n1", ["init", "--autolock", "--default-addr-pool", "198.19.0.0/16"]);
	t.equal(init.code, 0, init.stderr);
	const key = /TSWKEY-1-[A-Za-z0-9_-]+/.exec(init.stdout)?.[0];
	t.ok(key, "an unlock key");
	const token = /TSWARM-1-\S+/.exec(await cli(lab, "n1", ["join-token", "manager"]))?.[0];
	for (const n of ["n2", "n3"]) await cli(lab, n, ["join", "--token", token!, `${addr("n1")}:2377`]);
	await waitFor(
		"three voters",
		// A manager joins as a non-voter ("Catching up") and votes after autopilot's stabilization.
		async () =>
			(await nodeLs(lab, "n1")).filter((v) => v.managerStatus === "Leader" || v.managerStatus === "Reachable")
				.length === 3 || undefined,
		{ timeoutMs: 60_000, intervalMs: 500 },
	);
	await createNet("n1", "before", 30_000);

	await agents.get("n1")!.stop("SIGTERM");
	const print = fingerprint("n1");
	await start("n1");
	t.equal((await call<{ locked?: boolean }>(dir("n1"), "GET", "/v1/info")).locked, true, "n1 is locked");
	await createNet("n2", "while-locked", 60_000);
	t.ok(
		(await networks("n2")).some((n) => n.Name === "while-locked"),
		"n2 and n3 commit without n1 (control: the cluster works)",
	);
	t.equal(fingerprint("n1"), print, "n1's Raft dir did not move: it received and acknowledged nothing");

	// n3 down: n2 alone with a locked n1 is no majority.
	await agents.get("n3")!.stop("SIGTERM");
	const noQuorum = await lab.tsswarm("n2", ["network", "create", "no-quorum"]);
	t.not(noQuorum.code, 0, `no quorum while n1 is locked and n3 down (${noQuorum.stderr.trim()})`);
	t.equal(fingerprint("n1"), print, "still nothing on n1");

	const wrong = await lab.tsswarm("n1", ["unlock"], { input: key!.replace(/^(TSWKEY-1-)./, "$1A") });
	t.equal(wrong.code, 1, "a wrong key is refused");
	t.equal((await lab.tsswarm("n1", ["unlock"], { input: key! })).code, 0, "the right key unlocks");
	await createNet("n2", "after-unlock", 60_000);
	t.pass("n1 and n2 make a majority again: n1 votes");
	const caught = await waitFor(
		"n1 to catch up",
		async () => {
			const names = (await networks("n1").catch(() => [])).map((n) => n.Name);
			return ["before", "while-locked", "after-unlock"].every((x) => names.includes(x)) ? names : undefined;
		},
		{ timeoutMs: 60_000, intervalMs: 500 },
	);
	t.ok(caught.length >= 3, `n1 lists ${caught.join(", ")}`);
	t.not(fingerprint("n1"), print, "control: n1's Raft dir moves once unlocked");
});
