// `lab up --cluster`: real agents in every node forming one cluster (one of them a real linux/arm64
// process under qemu-user), and the failures on purpose: stop/kill, start, cut and heal a node.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import {
	createLab,
	existingNetns,
	foreignNodePath,
	isRunning,
	LabError,
	labRoot,
	type NodeView,
	run,
	startNode,
	stopNode,
} from "../../cli/lab/index.ts";
import { waitFor } from "../helpers/index.ts";
import { type Lab, withLab } from "../helpers/lab.ts";

const repo = new URL("../..", import.meta.url).pathname;
const cli = join(repo, "cli/tsswarm");

async function nodeLs(lab: Lab, on: string): Promise<NodeView[]> {
	const r = await lab.tsswarm(on, ["node", "ls", "--format", "json"]);
	if (r.code !== 0) throw new Error(`node ls on ${on}: ${r.stderr.trim()}`);
	return JSON.parse(r.stdout) as NodeView[];
}

const byAddr = (view: NodeView[], addr: string) => view.find((v) => v.addr.startsWith(`${addr}:`));

async function pings(lab: Lab, from: string, to: string): Promise<boolean> {
	return (await lab.exec(from, ["ping", "-c", "1", "-W", "1", to])).code === 0;
}

const mountsUnder = (dir: string) =>
	readFileSync("/proc/self/mountinfo", "utf8")
		.split("\n")
		.map((l) => l.split(" ")[4] ?? "")
		.filter((m) => m.startsWith(`${dir}/`));

t.test("a 3-node cluster lab (n2 linux/arm64): stop, start, cut, heal, down", async (t) => {
	const t0 = Date.now();
	const lab = await withLab(t, { nodes: 3, cluster: true, platforms: ["linux/amd64", "linux/arm64"] });
	t.comment(`lab up --cluster: ${Date.now() - t0} ms`);
	const [n1, n2, n3] = lab.nodes as [Lab["nodes"][0], Lab["nodes"][0], Lab["nodes"][0]];
	t.same(
		lab.nodes.map((n) => n.platform),
		["linux/amd64", "linux/arm64", "linux/amd64"],
		"platforms assigned round robin and recorded",
	);
	const agents = lab.nodes.map((n) => n.agent?.process);
	t.ok(
		agents.every((p) => p && isRunning(p)),
		"every node's agent runs and is in the record",
	);
	t.ok(
		agents.every((p) => p && lab.record.processes.some((q) => q.pid === p.pid)),
		"the agents are among the lab's processes (lab down and sweeps end them)",
	);

	// Every node, not only n1, sees the three of them alive.
	for (const on of ["n1", "n2", "n3"]) {
		const view = await waitFor(
			`${on} to list 3 alive nodes`,
			async () => {
				const v = await nodeLs(lab, on);
				return v.filter((x) => x.state === "alive").length === 3 ? v : undefined;
			},
			{ timeoutMs: 60_000, intervalMs: 250 },
		);
		t.equal(view.length, 3, `${on} lists 3 nodes`);
		t.equal(byAddr(view, n2.address)?.platform?.architecture, "arm64", `${on} sees n2 as arm64`);
		t.equal(byAddr(view, n1.address)?.platform?.architecture, "amd64", `${on} sees n1 as amd64`);
	}
	const cmdline = readFileSync(`/proc/${n2.agent!.process!.pid}/cmdline`, "utf8");
	t.ok(cmdline.includes(foreignNodePath("linux/arm64")), "n2's agent is the arm64 Node (under qemu-user)");

	// The CLI's own view: `lab ls --json` and `lab exec NODE -- tsswarm ...` with tsswarm on PATH.
	const ls = JSON.parse(execFileSync(cli, ["lab", "ls", "--json"], { encoding: "utf8" })) as Array<{
		name: string;
		nodeDetails?: Array<{ name: string; platform?: string; agent?: string }>;
	}>;
	t.same(
		ls.find((l) => l.name === lab.name)?.nodeDetails?.map((n) => `${n.name} ${n.platform} ${n.agent}`),
		["n1 linux/amd64 running", "n2 linux/arm64 running", "n3 linux/amd64 running"],
		"lab ls shows each node's platform and agent",
	);
	const viaCli = execFileSync(cli, ["lab", "exec", "--name", lab.name, "n3", "--", "tsswarm", "node", "ls"], {
		encoding: "utf8",
	});
	t.match(viaCli, /^ID\s+HOSTNAME\s+STATUS/, "lab exec n3 -- tsswarm node ls talks to n3's agent");
	t.match(
		viaCli.split("\n").find((l) => l.includes(" * ")) ?? "",
		/\sn3\s/,
		"the agent answering is n3's own (the * row)",
	);

	// SIGKILL n3's agent: n1 sees it down; started again it comes back with the same identity.
	const n3Id = byAddr(await nodeLs(lab, "n1"), n3.address)!.id;
	const killed = agents[2]!;
	t.equal(await lab.stop("n3", { kill: true }), true, "lab stop n3 --kill stops it");
	t.notOk(isRunning(killed), "n3's agent process is gone");
	t.equal(lab.nodes[2]!.agent?.state, "stopped", "n3 stays in the record, stopped");
	t.equal(await lab.stop("n3", { kill: true }), false, "stopping it again is a no-op");
	let since = Date.now();
	await waitFor("n1 to see n3 down", async () => byAddr(await nodeLs(lab, "n1"), n3.address)?.state !== "alive", {
		timeoutMs: 30_000,
		intervalMs: 250,
	});
	t.comment(`n3 down on n1 after ${Date.now() - since} ms`);
	t.equal(await lab.start("n3"), true, "lab start n3 starts it");
	t.equal(await lab.start("n3"), false, "starting it again is a no-op");
	since = Date.now();
	const back = await waitFor(
		"n1 to see n3 alive again",
		async () => {
			const v = byAddr(await nodeLs(lab, "n1"), n3.address);
			return v?.state === "alive" ? v : undefined;
		},
		{ timeoutMs: 30_000, intervalMs: 250 },
	);
	t.comment(`n3 alive on n1 ${Date.now() - since} ms after lab start`);
	t.equal(back.id, n3Id, "n3 came back with the same node id (same data root)");
	t.equal((await nodeLs(lab, "n1")).length, 3, "and as the same node, not a fourth one");

	// Cut n2's underlay: n1 sees it down, and no packet passes either way; heal undoes it.
	t.ok(await pings(lab, "n2", n1.address), "control: n2 pings n1 before the cut");
	t.equal(await lab.cut("n2"), true, "lab cut n2 cuts it");
	t.equal(await lab.cut("n2"), false, "cutting it again is a no-op");
	t.notOk(await pings(lab, "n2", n1.address), "n2 cannot ping n1 while cut");
	t.notOk(await pings(lab, "n1", n2.address), "n1 cannot ping n2 while cut");
	t.ok(await pings(lab, "n1", n3.address), "control: n1 still pings n3");
	since = Date.now();
	await waitFor("n1 to see n2 down", async () => byAddr(await nodeLs(lab, "n1"), n2.address)?.state !== "alive", {
		timeoutMs: 30_000,
		intervalMs: 250,
	});
	t.comment(`n2 down on n1 ${Date.now() - since} ms after the cut`);
	t.ok(lab.nodes[1]!.cut, "the record says n2 is cut");
	// Heal through the CLI command itself.
	execFileSync(cli, ["lab", "heal", "--name", lab.name, "n2"], { stdio: "ignore" });
	t.equal(await lab.heal("n2"), false, "healing it again is a no-op");
	t.ok(await pings(lab, "n2", n1.address), "n2 pings n1 after heal");
	since = Date.now();
	await waitFor(
		"n1 to see n2 alive again",
		async () => byAddr(await nodeLs(lab, "n1"), n2.address)?.state === "alive",
		{
			timeoutMs: 60_000,
			intervalMs: 250,
		},
	);
	t.comment(`n2 alive on n1 ${Date.now() - since} ms after heal`);

	// lab down: no namespace, process or mount left. Controls: all of them existed just before.
	const probe = join(n1.dir, "probe-mount");
	mkdirSync(probe);
	await run(["mount", "-t", "tmpfs", "tmpfs", probe]);
	const prefix = `tsl-${lab.name}-`;
	const netnsNow = async () => [...(await existingNetns())].filter((n) => n.startsWith(prefix));
	t.equal((await netnsNow()).length, 4, "control: 3 node namespaces and the hub exist");
	const live = lab.record.nodes.map((n) => n.agent!.process!);
	t.ok(live.every(isRunning), "control: three agents run");
	t.same(mountsUnder(lab.record.dir), [probe], "control: a mount under the lab's dir exists");
	await lab.destroy();
	t.same(await netnsNow(), [], "no namespace left");
	t.notOk(
		live.some((p) => isRunning(p)),
		"no agent left",
	);
	t.same(mountsUnder(lab.record.dir), [], "no mount left");
	t.notOk(existsSync(lab.record.dir), "no lab dir left");
	t.comment(`whole test: ${Date.now() - t0} ms`);
});

t.test("lab actions refuse unknown labs and nodes, and stop/start need a cluster lab", async (t) => {
	const lab = await withLab(t, { nodes: 1 });
	const code = async (p: Promise<unknown>) => {
		try {
			await p;
			return "resolved";
		} catch (err) {
			return err instanceof LabError ? err.code : String(err);
		}
	};
	t.equal(await code(stopNode(`${lab.name}x`, "n1")), "ERR_LAB_NOT_FOUND", "unknown lab");
	t.equal(await code(lab.cut("n7")), "ERR_LAB_NODE", "unknown node");
	t.equal(await code(lab.stop("n1")), "ERR_LAB_NOT_CLUSTER", "stop on a lab without agents");
	t.equal(await code(startNode(lab.name, "n1")), "ERR_LAB_NOT_CLUSTER", "start on a lab without agents");
	// Control: the same node is known (cut and heal work without a cluster too).
	t.equal(await lab.cut("n1"), true, "control: n1 exists and can be cut");
	t.equal(await lab.heal("n1"), true, "and healed");
	const refusedBeforeAnything = async (o: Parameters<typeof createLab>[0]) => {
		const r = await code(createLab(o));
		t.notOk(existsSync(join(labRoot(), o.name)), `${o.name}: nothing was made`);
		return r;
	};
	t.equal(
		await refusedBeforeAnything({ name: `${lab.name}p`, nodes: 2, platforms: ["linux/arm64"] }),
		"ERR_LAB_PLATFORM",
		"--platforms without --cluster",
	);
	t.equal(
		await refusedBeforeAnything({ name: `${lab.name}q`, nodes: 2, cluster: true, platforms: ["linux/s390x"] }),
		"ERR_LAB_PLATFORM",
		"a platform no node can run here",
	);
	const usage = await run([cli, "lab", "up", "--name", `${lab.name}r`, "--platforms", "linux/arm64"], {
		allowFailure: true,
	});
	t.not(usage.code, 0, "the CLI refuses --platforms without --cluster");
	t.match(usage.stderr, /--platforms needs --cluster/);
});
