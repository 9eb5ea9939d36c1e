// Upgrades: two release builds with adjacent versions run together in a 3-node lab (join, node ls,
// network create through a follower), then one node's binary is replaced and its agent restarted:
// same node id, still in the cluster, its state kept; a container started by the old binary is
// still running, listed and stoppable by the new one.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { socketPath } from "../../agent/api/index.ts";
import { netnsArgv } from "../../cli/lab/index.ts";
import { ensureTestImages } from "../helpers/images.ts";
import { tempDir, waitFor } from "../helpers/index.ts";
import { type Lab, withLab } from "../helpers/lab.ts";
import { pathWithout, releaseFixture } from "./fixtures.ts";

const OLD = "0.1.0";
const NEW = "0.2.0-next";
const oldRel = releaseFixture(["amd64"], OLD);
const newRel = releaseFixture(["amd64"], NEW);
const PATH = pathWithout(["node", "nodejs", "npm", "npx", "corepack"]);
const bins = tempDir("tsswarm-upgrade-bin-");
t.teardown(bins.remove);

interface NodeRow {
	id: string;
	addr: string;
	state: string;
	role: string;
	engineVersion?: string | null;
	self: boolean;
}

t.test("old and new agents interoperate; an upgraded node keeps its identity, state and container", async (t) => {
	const lab: Lab = await withLab(t, { nodes: 3 });
	// The installed binary: one path that an upgrade overwrites, as install.sh does.
	const installed = (n: string) => join(bins.path, `${n}-tsswarm`);
	const install = (n: string, rel: typeof oldRel) => {
		rmSync(installed(n), { force: true });
		copyFileSync(rel.get().binaries.amd64!, installed(n));
		spawnSync("chmod", ["0755", installed(n)]);
	};
	const node = (name: string) => lab.nodes.find((x) => x.name === name)!;
	const env = (name: string) => ({
		PATH,
		TSSWARM_DATA_ROOT: node(name).dir,
		TSSWARM_NODE: name,
		TSSWARM_CGROUP_PARENT: node(name).netns,
	});
	const cli = (name: string, args: string[]) => {
		const [cmd, ...rest] = netnsArgv(lab.record, name, [installed(name), ...args]);
		return spawnSync(cmd!, rest, { encoding: "utf8", env: env(name), timeout: 60_000 });
	};
	const agents = new Map<string, ChildProcess>();
	const stop = async (name: string) => {
		const a = agents.get(name);
		if (!a || a.exitCode !== null || a.signalCode !== null) return;
		const gone = new Promise((r) => a.once("exit", r));
		a.kill("SIGTERM");
		await gone;
	};
	t.teardown(async () => {
		for (const [name, a] of agents) {
			if (a.exitCode === null && a.signalCode === null) a.kill("SIGKILL");
			await stop(name);
		}
	});
	const start = async (name: string) => {
		const n = node(name);
		rmSync(socketPath(n.dir), { force: true });
		const out = openSync(join(n.dir, "agent.log"), "a");
		const [cmd, ...rest] = netnsArgv(lab.record, name, [
			installed(name),
			"agent",
			"--listen-addr",
			`${n.address}:2377`,
		]);
		const a = spawn(cmd!, rest, { stdio: ["ignore", out, out], env: env(name) });
		closeSync(out);
		agents.set(name, a);
		await waitFor(`${name}'s socket`, () => existsSync(socketPath(n.dir)) || a.exitCode !== null, {
			timeoutMs: 30_000,
		});
		t.equal(a.exitCode, null, `${name}'s agent runs (see ${n.dir}/agent.log)`);
	};
	const nodeLs = (from: string): NodeRow[] => {
		const r = cli(from, ["node", "ls", "--format", "json"]);
		return r.status === 0 ? (JSON.parse(r.stdout) as NodeRow[]) : [];
	};
	const view = (from: string) =>
		nodeLs(from)
			.map((r) => `${r.addr.split(":")[0]}:${r.role}:${r.state}:${r.engineVersion}`)
			.sort()
			.join(" ");
	const want = (versions: Record<string, string>) =>
		["n1", "n2", "n3"]
			.map((n, i) => `${node(n).address}:${i < 2 ? "manager" : "worker"}:alive:${versions[n]}`)
			.sort()
			.join(" ");
	const info = (name: string) => {
		const r = cli(name, ["node", "ls", "--format", "json"]);
		return (JSON.parse(r.stdout) as NodeRow[]).find((x) => x.self)!;
	};

	// n1 (old) inits; n2 (new) joins as a manager, n3 (old) as a worker.
	install("n1", oldRel);
	install("n2", newRel);
	install("n3", oldRel);
	t.equal(cli("n1", ["--version"]).stdout, `${OLD}\n`);
	t.equal(cli("n2", ["--version"]).stdout, `${NEW}\n`, "the build's version override is in the binary");
	for (const n of ["n1", "n2", "n3"]) await start(n);
	const init = cli("n1", ["init"]);
	t.equal(init.status, 0, init.stderr);
	const workerToken = /TSWARM-1-[a-z2-7]+-[a-z2-7]+/.exec(init.stdout)?.[0];
	// n3 stays a worker throughout (autopilot would make it the third voter of three nodes).
	const voters = cli("n1", ["swarm", "update", "--voters", "2"]);
	t.equal(voters.status, 0, voters.stderr);
	const managerToken = /TSWARM-1-[a-z2-7]+-[a-z2-7]+/.exec(cli("n1", ["join-token", "manager"]).stdout)?.[0];
	const j2 = cli("n2", ["join", "--token", managerToken!, `${node("n1").address}:2377`]);
	t.equal(j2.status, 0, j2.stderr);
	const j3 = cli("n3", ["join", "--token", workerToken!, `${node("n1").address}:2377`]);
	t.equal(j3.status, 0, j3.stderr);
	const mixed = want({ n1: OLD, n2: NEW, n3: OLD });
	let last = "";
	t.teardown(() => t.comment(`last views: ${last}`));
	await waitFor(
		"n1 and n2 to list all three alive with their versions",
		() => {
			last = `n1: ${view("n1")} | n2: ${view("n2")}`;
			return view("n1") === mixed && view("n2") === mixed;
		},
		{
			timeoutMs: 60_000,
			intervalMs: 500,
		},
	);
	t.pass(`mixed cluster: ${mixed}`);

	// A write through the follower (new) to the leader (old), read on both.
	const net = cli("n2", ["network", "create", "--driver", "overlay", "upgnet"]);
	t.equal(net.status, 0, net.stderr);
	await waitFor("the network on the old leader", () => cli("n1", ["network", "ls"]).stdout.includes("upgnet"), {
		timeoutMs: 20_000,
	});

	// A container the old binary started on n3.
	const images = await ensureTestImages();
	const load = cli("n3", ["image", "load", images.archivePath]);
	t.equal(load.status, 0, load.stderr);
	const run = cli("n3", ["run", "-d", "busybox", "sleep", "600"]);
	t.equal(run.status, 0, run.stderr);
	const cid = run.stdout.trim();
	t.teardown(() => cli("n3", ["rm", "-f", cid]));
	const status = () => {
		const ps = cli("n3", ["ps", "-a", "--format", "json"]);
		return (JSON.parse(ps.stdout || "[]") as { id: string; status: string }[]).find((c) => c.id === cid)?.status;
	};
	t.equal(status(), "running", "the old binary lists its container running");

	// A service task that the old worker started on n3: the new one re-adopts it (same task, same container).
	const svc = cli("n1", [
		"service",
		"create",
		"-d",
		"--name",
		"upg",
		"--constraint",
		"node.role==worker",
		"busybox",
		"sleep",
		"600",
	]);
	t.equal(svc.status, 0, svc.stderr);
	t.teardown(() => cli("n2", ["service", "rm", "upg"]));
	const tasks = () => {
		const ps = cli("n2", ["service", "ps", "upg", "--format", "json"]);
		const rows =
			ps.status === 0 ? (JSON.parse(ps.stdout) as { id: string; state: string; desiredState: string }[]) : [];
		return rows.filter((r) => r.desiredState === "running");
	};
	const taskContainer = () =>
		(JSON.parse(cli("n3", ["ps", "--format", "json"]).stdout || "[]") as { id: string; status: string }[]).find((c) =>
			JSON.stringify(c).includes("upg."),
		);
	await waitFor(
		"the service task running on n3",
		() => tasks().some((r) => r.state === "running") && taskContainer()?.status === "running",
		{ timeoutMs: 90_000, intervalMs: 500 },
	);
	const task0 = tasks()[0]!.id;
	const container0 = taskContainer()!.id;

	// Upgrade n1 (the old leader) and n3 (the old worker): stop, replace the file, start.
	const before = { n1: info("n1").id, n3: info("n3").id };
	for (const n of ["n1", "n3"]) {
		await stop(n);
		install(n, newRel);
		t.equal(cli(n, ["--version"]).stdout, `${NEW}\n`);
		await start(n);
	}
	t.equal(info("n1").id, before.n1, "n1 kept its node id");
	t.equal(info("n3").id, before.n3, "n3 kept its node id");
	const upgraded = want({ n1: NEW, n2: NEW, n3: NEW });
	await waitFor(
		"every node listed alive on the new version",
		() => view("n1") === upgraded && view("n2") === upgraded,
		{
			timeoutMs: 60_000,
			intervalMs: 500,
		},
	);
	t.equal(nodeLs("n1").length, 3, "no node was added or lost");
	t.match(cli("n1", ["network", "ls"]).stdout, /upgnet/, "the store's state survived the leader's upgrade");
	const net2 = cli("n3", ["network", "ls"]);
	t.not(net2.status, 0, "a worker still refuses manager-only requests after the upgrade");

	await waitFor(
		"the service task reported running by the upgraded worker",
		() => tasks().some((r) => r.id === task0 && r.state === "running"),
		{ timeoutMs: 60_000, intervalMs: 500 },
	);
	t.same(
		tasks().map((r) => r.id),
		[task0],
		"the same task, no replacement",
	);
	t.equal(taskContainer()?.id, container0, "in the same container, re-adopted by the new binary");
	t.equal(taskContainer()?.status, "running");

	// The container outlived its agent and both binaries: the new one lists it running and stops it.
	t.equal(status(), "running", "the new binary lists the old binary's container running");
	const stopped = cli("n3", ["stop", "-t", "1", cid]);
	t.equal(stopped.status, 0, stopped.stderr);
	t.equal(status(), "exited", "and stops it");
	t.ok(readFileSync(join(node("n3").dir, "agent.log"), "utf8").length > 0);
});
