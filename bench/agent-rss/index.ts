// bench/agent-rss: idle RSS of each agent of a 3-node lab cluster (n1 init, n2 joined as manager, n3
// as worker), from the release binary and from source, then with one service task per node and
// with 30; vs a private dockerd+containerd (Debian docker.io) idle and with 30 containers, in the
// same run. Also the RSS of our log daemon (one per node). See README.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
	closeSync,
	copyFileSync,
	existsSync,
	mkdirSync,
	mkdtempSync,
	openSync,
	readdirSync,
	readFileSync,
	rmSync,
	symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { socketPath } from "../../agent/api/index.ts";
import { createLab, destroyRecord, type LabRecord, labRoot, netnsArgv, sweepStaleLabs } from "../../cli/lab/index.ts";
import { buildTestImages } from "../../scripts/images/index.ts";
import { type Platform, release } from "../../scripts/release/build.ts";
import { stopProcess } from "../lib/stop.ts";

const log = (m: string) => process.stderr.write(`[agent-rss] ${m}\n`);
const repo = new URL("../..", import.meta.url).pathname;
const TASKS = 30;
const IDLE_MS = Number(process.env.AGENT_RSS_IDLE_MS ?? 20_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Mem {
	rss: number;
	anon: number;
	file: number;
}
/** VmRSS, RssAnon, RssFile of a pid in MiB (one decimal). */
function mem(pid: number): Mem {
	const s = readFileSync(`/proc/${pid}/status`, "utf8");
	const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(s)?.[1] ?? 0);
	const mb = (x: number) => Math.round((x / 1024) * 10) / 10;
	return { rss: mb(kb("VmRSS")), anon: mb(kb("RssAnon")), file: mb(kb("RssFile")) };
}
/** The memory of the data root's log daemon, if one runs (logd.pid names a live process). */
function logdOf(root: string): Mem | undefined {
	try {
		return mem(Number(readFileSync(join(root, "logd.pid"), "utf8").split(" ")[0]));
	} catch {
		return undefined;
	}
}
const sum = (ms: Mem[]): Mem => ({
	rss: Math.round(ms.reduce((a, m) => a + m.rss, 0) * 10) / 10,
	anon: Math.round(ms.reduce((a, m) => a + m.anon, 0) * 10) / 10,
	file: Math.round(ms.reduce((a, m) => a + m.file, 0) * 10) / 10,
});
/** The median of 5 samples 2 s apart (RSS moves with GC). */
async function settled(pids: () => number[]): Promise<Mem> {
	const xs: Mem[] = [];
	for (let i = 0; i < 5; i++) {
		xs.push(sum(pids().map(mem)));
		await sleep(2000);
	}
	return xs.sort((a, b) => a.rss - b.rss)[2]!;
}

/**
 * A file just written (the build) sits in the page cache in large folios, and mapping it maps far
 * more of Node's text than a process of a booted host touches (+10-30 MB RssFile, measured):
 * drop it from the cache first, as after a reboot.
 */
const evict = (file: string) => spawnSync("dd", [`if=${file}`, "iflag=nocache", "count=0"], { stdio: "ignore" });

async function waitFor<T>(what: string, f: () => T | undefined | false, timeoutMs: number): Promise<T> {
	const end = Date.now() + timeoutMs;
	for (;;) {
		const v = f();
		if (v) return v;
		if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
		await sleep(250);
	}
}

interface Cluster {
	agents: ChildProcess[];
	cli: (node: string, args: string[]) => ReturnType<typeof spawnSync>;
}

/** Agents in every node of `rec` from `argv0` (the binary, or the source CLI), formed into a cluster. */
async function cluster(rec: LabRecord, argv0: string[]): Promise<Cluster> {
	const agents: ChildProcess[] = [];
	const env = (n: (typeof rec.nodes)[number]) => ({
		...process.env,
		TSSWARM_DATA_ROOT: n.dir,
		TSSWARM_NODE: n.name,
		TSSWARM_CGROUP_PARENT: n.netns,
	});
	const cli = (node: string, args: string[]) => {
		const n = rec.nodes.find((x) => x.name === node)!;
		const [cmd, ...rest] = netnsArgv(rec, node, [...argv0, ...args]);
		return spawnSync(cmd!, rest, { encoding: "utf8", env: env(n), timeout: 120_000 });
	};
	for (const n of rec.nodes) {
		rmSync(socketPath(n.dir), { force: true });
		const out = openSync(join(n.dir, "agent.log"), "a");
		const [cmd, ...rest] = netnsArgv(rec, n.name, [...argv0, "agent", "--listen-addr", `${n.address}:2377`]);
		const a = spawn(cmd!, rest, { stdio: ["ignore", out, out], env: env(n) });
		closeSync(out);
		agents.push(a);
		await waitFor(`${n.name}'s socket`, () => existsSync(socketPath(n.dir)) || a.exitCode !== null, 60_000);
		if (a.exitCode !== null) throw new Error(`${n.name}'s agent exited; see ${n.dir}/agent.log`);
	}
	const [n1, n2, n3] = rec.nodes;
	const init = cli(n1!.name, ["init"]);
	if (init.status !== 0) throw new Error(`init: ${init.stderr}`);
	const worker = /TSWARM-1-[a-z2-7]+-[a-z2-7]+/.exec(String(init.stdout))?.[0];
	const mt = cli(n1!.name, ["join-token", "manager"]);
	const manager = /TSWARM-1-[a-z2-7]+-[a-z2-7]+/.exec(String(mt.stdout))?.[0];
	if (!worker || !manager) throw new Error(`no join tokens: ${init.stdout} ${mt.stdout} ${mt.stderr}`);
	for (const [n, token] of [
		[n2!, manager],
		[n3!, worker],
	] as const) {
		const j = cli(n.name, ["join", "--token", token, `${n1!.address}:2377`]);
		if (j.status !== 0) throw new Error(`${n.name} join: ${j.stderr}`);
	}
	await waitFor(
		"3 nodes alive",
		() => {
			const ls = cli(n1!.name, ["node", "ls", "--format", "json"]);
			if (ls.status !== 0) return false;
			return (JSON.parse(String(ls.stdout)) as { state: string }[]).filter((x) => x.state === "alive").length === 3;
		},
		60_000,
	);
	return { agents, cli };
}

const stopAll = (ps: ChildProcess[]) => Promise.all(ps.map(stopProcess));

/** Idle RSS of each agent of a fresh 3-node lab cluster; with `tasks`, also with that many tasks. */
async function labRun(variant: string, argv0: string[], tasks: number, archive: string) {
	const root = labRoot();
	const rec = await createLab({ name: `rss${process.pid % 10000}${variant[0]}`, nodes: 3, root });
	let c: Cluster | undefined;
	try {
		log(`${variant}: starting 3 agents`);
		c = await cluster(rec, argv0);
		const pids = c.agents.map((a) => a.pid!);
		await sleep(IDLE_MS);
		const idle = await Promise.all(pids.map((p) => settled(() => [p])));
		// Not counted in `idle` (a process of its own): whether a node runs its log daemon with no task.
		const logdIdle = rec.nodes.map((n) => logdOf(n.dir));
		log(`${variant}: idle ${JSON.stringify(idle)} (log daemons ${JSON.stringify(logdIdle)})`);
		if (!tasks) return { idle, logdIdle };
		for (const n of rec.nodes) {
			const l = c.cli(n.name, ["image", "load", archive]);
			if (l.status !== 0) throw new Error(`image load on ${n.name}: ${l.stderr}`);
		}
		// One task per node first: what the first task costs once (the runtime's code, its log
		// daemon's socket, ...) is not what each further task costs.
		const running = async (n: number) =>
			waitFor(
				`${n} tasks running`,
				() => {
					const ps = c!.cli(rec.nodes[0]!.name, ["service", "ps", "rss", "--format", "json"]);
					if (ps.status !== 0) return false;
					const rows = JSON.parse(String(ps.stdout)) as { state: string; node: string }[];
					const up = rows.filter((r) => r.state === "running");
					if (up.length < n) return false;
					const by: Record<string, number> = {};
					for (const r of up) by[String(r.node)] = (by[String(r.node)] ?? 0) + 1;
					return by;
				},
				240_000,
			);
		const first = rec.nodes.length;
		const cr = c.cli(rec.nodes[0]!.name, [
			"service",
			"create",
			"-d",
			"--name",
			"rss",
			"--replicas",
			String(first),
			"busybox",
			"sleep",
			"86400",
		]);
		if (cr.status !== 0) throw new Error(`service create: ${cr.stderr}`);
		const firstPerNode = await running(first);
		await sleep(IDLE_MS);
		const one = await Promise.all(pids.map((p) => settled(() => [p])));
		log(`${variant}: with ${first} tasks ${JSON.stringify(one)} (per node ${JSON.stringify(firstPerNode)})`);
		const sc = c.cli(rec.nodes[0]!.name, ["service", "scale", "-d", `rss=${tasks}`]);
		if (sc.status !== 0) throw new Error(`service scale: ${sc.stderr}`);
		const perNode = await running(tasks);
		await sleep(IDLE_MS);
		const busy = await Promise.all(pids.map((p) => settled(() => [p])));
		// The data root's log daemon (one per node, whatever the number of tasks): ours, not a shim's.
		const logd = rec.nodes.map((n) => logdOf(n.dir));
		log(
			`${variant}: with ${tasks} tasks ${JSON.stringify(busy)} (tasks per node ${JSON.stringify(perNode)}; log daemons ${JSON.stringify(logd)})`,
		);
		c.cli(rec.nodes[0]!.name, ["service", "rm", "rss"]);
		const tasksOn = rec.nodes.map((n) => perNode[n.name] ?? 0);
		const firstOn = rec.nodes.map((n) => firstPerNode[n.name] ?? 0);
		return { idle, logdIdle, one, busy, perNode, tasksOn, firstOn, logd };
	} finally {
		if (c) await stopAll(c.agents);
		await destroyRecord(root, rec);
	}
}

/** A private dockerd (its own data/exec root, socket, no host networking), idle and with 30 containers. */
async function docker() {
	for (const b of ["dockerd", "containerd", "docker"]) {
		if (spawnSync("sh", ["-c", `command -v ${b}`]).status !== 0) {
			log("installing Debian's docker.io with apt-get");
			execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "docker.io"], {
				stdio: "inherit",
				env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
			});
			break;
		}
	}
	const dir = mkdtempSync(join(tmpdir(), "bench-rss-docker-"));
	const sock = join(dir, "docker.sock");
	const out = openSync(join(dir, "dockerd.log"), "a");
	const d = spawn(
		"dockerd",
		[
			"--data-root",
			join(dir, "data"),
			"--exec-root",
			join(dir, "exec"),
			"--pidfile",
			join(dir, "docker.pid"),
			"--host",
			`unix://${sock}`,
			"--bridge=none",
			"--iptables=false",
			"--ip-masq=false",
			"--ip6tables=false",
		],
		{ stdio: ["ignore", out, out] },
	);
	closeSync(out);
	const dk = (args: string[]) => spawnSync("docker", ["-H", `unix://${sock}`, ...args], { encoding: "utf8" });
	// dockerd's own containerd and the shims it starts all name our exec root on their command line.
	const pids = () =>
		readdirSync("/proc")
			.filter((p) => /^\d+$/.test(p))
			.filter((p) => {
				try {
					const cl = readFileSync(`/proc/${p}/cmdline`, "utf8");
					return Number(p) === d.pid || (cl.includes(dir) && /containerd/.test(cl));
				} catch {
					return false;
				}
			})
			.map(Number);
	try {
		await waitFor("dockerd", () => dk(["info"]).status === 0 || d.exitCode !== null, 60_000);
		if (d.exitCode !== null) throw new Error(`dockerd exited; see ${dir}/dockerd.log`);
		await sleep(IDLE_MS);
		const idle = await settled(pids);
		log(`docker: idle dockerd+containerd ${JSON.stringify(idle)} (${pids().length} processes)`);
		// Docker 20.10 cannot load our OCI multi-arch archive: the same static busybox as a one-layer image.
		const rootfs = join(dir, "rootfs");
		mkdirSync(join(rootfs, "bin"), { recursive: true });
		copyFileSync("/usr/bin/busybox", join(rootfs, "bin", "busybox"));
		symlinkSync("busybox", join(rootfs, "bin", "sleep"));
		execFileSync("tar", ["-C", rootfs, "-cf", join(dir, "rootfs.tar"), "."]);
		const image = "bench-busybox:latest";
		const l = dk(["import", join(dir, "rootfs.tar"), image]);
		if (l.status !== 0) throw new Error(`docker import: ${l.stderr}`);
		for (let i = 0; i < TASKS; i++) {
			const r = dk(["run", "-d", "--network", "none", image, "/bin/sleep", "86400"]);
			if (r.status !== 0) throw new Error(`docker run: ${r.stderr}`);
		}
		await sleep(IDLE_MS);
		const busy = await settled(pids);
		const daemons = await settled(() => pids().filter((p) => !/shim/.test(readFileSync(`/proc/${p}/cmdline`, "utf8"))));
		log(`docker: with ${TASKS} containers ${JSON.stringify(busy)} (dockerd+containerd alone ${daemons.rss} MiB)`);
		const ids = dk(["ps", "-aq"]).stdout.split("\n").filter(Boolean);
		if (ids.length) dk(["rm", "-f", ...ids]);
		return { idle, busy, daemons };
	} finally {
		await stopAll([d]);
		rmSync(dir, { recursive: true, force: true });
	}
}

async function main() {
	await sweepStaleLabs({ root: labRoot() });
	const out = mkdtempSync(join(tmpdir(), "bench-rss-rel-"));
	try {
		const platform: Platform = process.arch === "arm64" ? "arm64" : "amd64";
		log("building the release binary");
		const rel = await release({ out, platforms: [platform] });
		const bin = rel.binaries[platform]!;
		evict(bin);
		const images = await buildTestImages({});
		const ours = await labRun("binary", [bin], TASKS, images.archivePath);
		const src = await labRun("source", [join(repo, "cli", "tsswarm")], 0, images.archivePath);
		const peer = await docker();

		const maxIdle = Math.max(...ours.idle.map((m) => m.rss));
		const perTask = ours.idle.map((m, i) => {
			const n = ours.tasksOn?.[i] ?? 0;
			return n ? Math.round(((ours.busy![i]!.rss - m.rss) / n) * 100) / 100 : 0;
		});
		// Each task after the first on its node: (with all tasks - with one per node) / the tasks added.
		const perExtra = ours.busy!.map((m, i) => {
			const n = (ours.tasksOn?.[i] ?? 0) - (ours.firstOn?.[i] ?? 0);
			return n > 0 ? Math.round(((m.rss - ours.one![i]!.rss) / n) * 100) / 100 : 0;
		});
		const oursFig = {
			binary_idle_mb: { n1_manager_leader: ours.idle[0], n2_manager: ours.idle[1], n3_worker: ours.idle[2] },
			binary_with_tasks_mb: ours.busy,
			tasks_per_node: ours.perNode,
			with_one_task_per_node_mb: ours.one,
			per_task_mb: perTask,
			per_extra_task_mb: perExtra,
			log_daemon_mb: ours.logd,
			log_daemon_idle_mb: ours.logdIdle,
			source_idle_mb: { n1_manager_leader: src.idle[0], n2_manager: src.idle[1], n3_worker: src.idle[2] },
			idle_max_rss_mb: maxIdle,
			idle_per_task_max_mb: Math.max(...perTask),
			per_extra_task_max_mb: Math.max(...perExtra),
		};
		const peerFig = {
			idle_mb: peer.idle,
			with_containers_mb: peer.busy,
			daemons_with_containers_mb: peer.daemons,
			per_container_mb: Math.round(((peer.busy.rss - peer.idle.rss) / TASKS) * 100) / 100,
		};
		const ratios = {
			idle_agent_vs_dockerd_containerd: Math.round((maxIdle / peer.idle.rss) * 1000) / 1000,
			worker_idle_vs_dockerd_containerd: Math.round((ours.idle[2]!.rss / peer.idle.rss) * 1000) / 1000,
			per_task_vs_per_container:
				peerFig.per_container_mb > 0 ? Math.round((Math.max(...perTask) / peerFig.per_container_mb) * 1000) / 1000 : 0,
			per_extra_task_vs_per_container:
				peerFig.per_container_mb > 0 ? Math.round((Math.max(...perExtra) / peerFig.per_container_mb) * 1000) / 1000 : 0,
		};
		process.stdout.write(
			`${JSON.stringify({ bench: "agent-rss", peer_name: "dockerd+containerd (Debian docker.io)", ours: oursFig, peer: peerFig, ratios })}\n`,
		);
	} finally {
		rmSync(out, { recursive: true, force: true });
	}
}

await main();
