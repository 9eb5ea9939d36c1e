// Who may connect comes from the store's nodes table, never from gossip: a rogue that holds the
// stolen membership key is seen alive by gossip yet refused by every node; a worker (a member)
// may read the directory but not speak Raft; `node rm` cuts it off.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import t from "tap";
import { call } from "../../../agent/index.ts";
import { netnsArgv } from "../../../cli/lab/index.ts";
import { cliPath as cli, startAgent } from "../../helpers/agents.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";
import { type Lab, withLab } from "../../helpers/lab.ts";

const TOKEN = /TSWARM-1-[a-z2-7]{25}-[a-z2-7]{32}/;
const child = new URL("./intruder-child.ts", import.meta.url).pathname;

interface Info {
	nodeId: string;
	clusterId: string;
	raft: { isLeader: boolean; term: number } | null;
	directory: { version: number; nodes: number };
	membership: { alive: number } | null;
}

/** An intruder process in a node's namespace, driven one command at a time. */
async function intruder(t: { teardown(fn: () => unknown): void }, lab: Lab, node: string, args: object) {
	const p: ChildProcess = spawn(
		netnsArgv(lab.record, node, [process.execPath, child, JSON.stringify(args)])[0]!,
		netnsArgv(lab.record, node, [process.execPath, child, JSON.stringify(args)]).slice(1),
		{ stdio: ["pipe", "pipe", "inherit"] },
	);
	const exited = new Promise<void>((r) => p.once("exit", () => r()));
	t.teardown(async () => {
		if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
		await exited;
	});
	const lines = createInterface({ input: p.stdout! })[Symbol.asyncIterator]();
	const next = async () => JSON.parse(String((await lines.next()).value)) as Record<string, unknown> & { id: string };
	const first = await next();
	return {
		id: first.id,
		async ask(cmd: string) {
			p.stdin!.write(`${cmd}\n`);
			return next();
		},
	};
}

t.test("the allow-list is the nodes table: gossip admits no one, workers speak no Raft", async (t) => {
	const lab = await withLab(t, { nodes: 3 });
	const [n1, n2] = lab.nodes;
	const a1 = await startAgent(lab, "n1");
	t.teardown(() => a1.stop("SIGKILL"));
	let a2 = await startAgent(lab, "n2");
	t.teardown(() => a2.stop("SIGKILL"));
	const init = await lab.exec("n1", [cli, "init"]);
	t.equal(init.code, 0, init.stderr);
	const j = await lab.exec("n2", [cli, "join", "--token", TOKEN.exec(init.stdout)![0], `${n1!.address}:2377`]);
	t.equal(j.code, 0, j.stderr);
	const info = (n: { dir: string }) => call<Info>(n.dir, "GET", "/v1/info");
	const i1 = await info(n1!);
	await waitFor("n2's directory comes from a manager", async () => (await info(n2!)).directory.version > 0, {
		timeoutMs: 15_000,
	});
	t.equal((await info(n2!)).directory.nodes, 2, "n2 knows both nodes");
	const termBefore = i1.raft!.term;

	// A rogue on n3 with the membership key a worker holds (here: stolen from n2's state).
	const stolen = JSON.parse(readFileSync(join(n2!.dir, "cluster", "state.json"), "utf8")).membershipKey as string;
	const rogueDir = tempDir("tsswarm-rogue-");
	t.teardown(rogueDir.remove);
	const rogue = await intruder(t, lab, "n3", {
		dataDir: rogueDir.path,
		ip: lab.nodes[2]!.address,
		target: { addr: `${n1!.address}:2377`, id: i1.nodeId },
		clusterId: i1.clusterId,
		membershipKey: stolen,
	});
	// Positive control: gossip did take the rogue in (it holds the key and signs for itself)...
	await waitFor("n1's gossip sees the rogue alive", async () => (await info(n1!)).membership?.alive === 3, {
		timeoutMs: 15_000,
	});
	// ...yet no node lets it connect, and it is in no node list.
	const r1 = await rogue.ask("list");
	t.equal(r1.ok, false, `the rogue is refused by n1 (${String(r1.error)})`);
	const ls = JSON.parse((await lab.exec("n1", [cli, "node", "ls", "--format", "json"])).stdout) as Array<{
		id: string;
	}>;
	t.same(ls.map((n) => n.id).sort(), [i1.nodeId, (await info(n2!)).nodeId].sort(), "node ls: the two joined nodes");

	// A compromised worker: n2's identity, its agent stopped.
	const n2Id = (await info(n2!)).nodeId;
	await a2.stop("SIGKILL");
	const worker = await intruder(t, lab, "n2", {
		dataDir: n2!.dir,
		ip: n2!.address,
		target: { addr: `${n1!.address}:2377`, id: i1.nodeId },
		clusterId: i1.clusterId,
	});
	t.equal(worker.id, n2Id, "the intruder holds n2's node key");
	const w1 = await worker.ask("list");
	t.equal(w1.ok, true, "positive control: a member may read the directory");
	const logFile = join(n1!.dir, "agent.log");
	const refusals = () =>
		readFileSync(logFile, "utf8")
			.split("\n")
			.filter((l) => l.includes(n2Id) && /raft/i.test(l) && /refus/i.test(l));
	const before = refusals().length;
	await worker.ask("raft");
	await waitFor(
		"n1 refuses the worker's Raft stream (or, unfixed, takes the forged term)",
		async () => refusals().length > before || (await info(n1!)).raft!.term !== termBefore,
		{ timeoutMs: 10_000 },
	);
	const after = await info(n1!);
	t.equal(after.raft!.term, termBefore, "the forged higher term did not reach the core");
	t.equal(after.raft!.isLeader, true, "n1 is still the leader");

	// node rm: the worker's record goes, and with it its place in every allow-list.
	await waitFor(
		"n1 sees n2 down",
		async () => {
			const ns = JSON.parse((await lab.exec("n1", [cli, "node", "ls", "--format", "json"])).stdout) as Array<{
				id: string;
				state: string;
			}>;
			return ns.find((n) => n.id === n2Id)?.state !== "alive";
		},
		{ timeoutMs: 20_000 },
	);
	const rm = await lab.exec("n1", [cli, "node", "rm", n2Id]);
	t.equal(rm.code, 0, rm.stderr);
	const w2 = await worker.ask("list");
	t.equal(w2.ok, false, `after node rm the worker is refused (${String(w2.error)})`);
	a2 = await startAgent(lab, "n2");
	t.ok(a2, "n2's agent starts again (it stays out until it joins again)");
});
