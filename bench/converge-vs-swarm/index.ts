// bench/converge-vs-swarm: time from `service create --replicas 30` (busybox sleep, --detach, as
// typed) to 30 tasks running, then from `service scale s=60` to 60 running: ours on a 3-node
// cluster lab (image pulled from the lab's registry by each node) vs Docker Swarm (Debian docker.io,
// `docker swarm init` on one node, busybox loaded from the same test archive) in the same run.
// Both are polled through their own API every 100 ms. Goal (issue 13): ours <= 0.5x Swarm's time.
// dockerd runs inside a 1-node lab namespace of its own (network traffic stays in namespaces made
// here) with private data/exec roots, pidfile, socket and cgroup parent, and no bridge or iptables;
// the host namespace's firewall rules and links are compared before and after.
// Options: --rounds N (1; medians; after round 1 our nodes have the image cached, Swarm's always has). Last line: {"bench":"converge-vs-swarm","ours":{...},"peer":{...},"ratios":{...}}.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
	existsSync,
	mkdirSync,
	mkdtempSync,
	readdirSync,
	readFileSync,
	rmdirSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { call } from "../../agent/api/index.ts";
import {
	createLab,
	destroyRecord,
	execInNode,
	type LabRecord,
	labRoot,
	netnsArgv,
	REGISTRY_ADDRESS,
	REGISTRY_PORT,
} from "../../cli/lab/index.ts";
import { ensurePeers } from "../../scripts/peers.ts";
import { busyboxDockerArchive, ensureTestImages } from "../../tests/helpers/images.ts";
import { uniqueName } from "../../tests/helpers/index.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "1" } } });
const ROUNDS = Number(values.rounds);
const FIRST = 30;
const SECOND = 60;
const POLL_MS = 100;
const PHASE_TIMEOUT_MS = 300_000;
const DOCKER = "/usr/bin/docker"; // Debian's client, the same version as its dockerd
const log = (m: string) => process.stderr.write(`[converge-vs-swarm] ${m}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r0 = (x: number) => Math.round(x);

interface Cluster {
	name: string;
	/** Runs the CLI command that creates or scales the service; resolves when it returns. */
	cli(args: string[]): Promise<void>;
	create(replicas: number): string[];
	scale(replicas: number): string[];
	remove(): Promise<void>;
	/** Running tasks of service s, as its manager's API reports them. */
	running(): Promise<number>;
}

/** Times one phase: the command as typed, then polling until `want` tasks run (and when the first new one did). */
async function phase(
	c: Cluster,
	args: string[],
	want: number,
): Promise<{ total_ms: number; first_ms: number; cli_ms: number }> {
	const start = await c.running().catch(() => 0);
	const t0 = performance.now();
	await c.cli(args);
	const cliMs = performance.now() - t0;
	let n = start;
	let firstMs: number | undefined;
	while (performance.now() - t0 < PHASE_TIMEOUT_MS) {
		n = await c.running().catch(() => n);
		if (n > start) firstMs ??= performance.now() - t0;
		if (n >= want) return { total_ms: r0(performance.now() - t0), first_ms: r0(firstMs!), cli_ms: r0(cliMs) };
		await sleep(POLL_MS);
	}
	throw new Error(`${c.name}: ${n}/${want} tasks running after ${PHASE_TIMEOUT_MS / 1000} s`);
}

// ---- ours -------------------------------------------------------------------------------------

function ours(rec: LabRecord): Cluster {
	const n1 = rec.nodes[0]!;
	const image = `${REGISTRY_ADDRESS}:${REGISTRY_PORT}/busybox:latest`;
	const cli = async (args: string[]) => {
		const r = await execInNode(rec, "n1", ["tsswarm", ...args]);
		if (r.code !== 0) throw new Error(`tsswarm ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
	};
	return {
		name: "tsswarm",
		cli,
		create: (n) => ["service", "create", "--detach", "--name", "s", "--replicas", String(n), image, "sleep", "3600"],
		scale: (n) => ["service", "scale", `s=${n}`, "--detach"],
		async remove() {
			await cli(["service", "rm", "s"]);
			// Until no task container is left on any node (the next round starts from zero).
			const deadline = Date.now() + 120_000;
			while (Date.now() < deadline) {
				let left = 0;
				for (const n of rec.nodes) {
					const r = await execInNode(rec, n.name, ["tsswarm", "ps", "-q"]);
					left += r.stdout.split("\n").filter(Boolean).length;
				}
				if (left === 0) return;
				await sleep(500);
			}
			throw new Error("tsswarm: task containers still there 120 s after service rm");
		},
		async running() {
			const rows = await call<{ name: string; running: number }[]>(n1.dir, "GET", "/v1/services", undefined, 5000);
			return rows.find((r) => r.name === "s")?.running ?? 0;
		},
	};
}

// ---- Docker Swarm -----------------------------------------------------------------------------

interface Dockerd {
	dir: string;
	sock: string;
	cgroup: string;
	proc: ChildProcess;
}

function dockerApi<T>(sock: string, path: string): Promise<T> {
	return new Promise((resolve, reject) => {
		const req = request({ socketPath: sock, path, timeout: 5000 }, (res) => {
			const chunks: Buffer[] = [];
			res.on("data", (c: Buffer) => chunks.push(c));
			res.on("end", () => {
				const body = Buffer.concat(chunks).toString();
				if (res.statusCode !== 200) return reject(new Error(`dockerd ${path}: HTTP ${res.statusCode} ${body}`));
				resolve(JSON.parse(body) as T);
			});
		});
		req.on("timeout", () => req.destroy(new Error(`dockerd ${path}: timeout`)));
		req.on("error", reject);
		req.end();
	});
}

function docker(d: Dockerd, args: string[], opts: { allowFailure?: boolean } = {}): string {
	const r = spawnSync(DOCKER, ["-H", `unix://${d.sock}`, ...args], { encoding: "utf8" });
	if (r.status !== 0 && !opts.allowFailure)
		throw new Error(`docker ${args.join(" ")} exited ${r.status}: ${(r.stderr ?? "").trim()}`);
	return r.stdout ?? "";
}

/** dockerd inside the peer lab's node namespace, swarm initialised, busybox loaded. */
async function startDockerd(peerLab: LabRecord, archive: string, dir: string): Promise<Dockerd> {
	const node = peerLab.nodes[0]!;
	for (const s of ["data", "exec"]) mkdirSync(join(dir, s), { recursive: true });
	const sock = join(dir, "docker.sock");
	const cgroup = uniqueName("tsw-sw");
	const out = join(dir, "dockerd.log");
	const args = [
		...["dockerd", "--data-root", join(dir, "data"), "--exec-root", join(dir, "exec")],
		...["--pidfile", join(dir, "docker.pid"), "-H", `unix://${sock}`],
		...["--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"],
		...["--storage-driver", "overlay2", "--cgroup-parent", `/${cgroup}`, "--log-level=error"],
	];
	writeFileSync(out, "");
	// nsenter execs dockerd: the child's pid is dockerd's.
	const [cmd, ...rest] = netnsArgv(peerLab, node.name, args);
	const proc = spawn(cmd!, rest, { stdio: ["ignore", "ignore", "pipe"] });
	proc.stderr?.on("data", (b: Buffer) => writeFileSync(out, b, { flag: "a" }));
	const d: Dockerd = { dir, sock, cgroup, proc };
	const deadline = Date.now() + 60_000;
	for (;;) {
		if (proc.exitCode !== null)
			throw new Error(`dockerd exited ${proc.exitCode}: ${readFileSync(out, "utf8").slice(-500)}`);
		if (existsSync(sock) && spawnSync(DOCKER, ["-H", `unix://${sock}`, "info"], { stdio: "ignore" }).status === 0)
			break;
		if (Date.now() > deadline)
			throw new Error(`dockerd did not answer in 60 s: ${readFileSync(out, "utf8").slice(-500)}`);
		await sleep(200);
	}
	docker(d, ["swarm", "init", "--advertise-addr", node.address]);
	const saved = busyboxDockerArchive(archive, join(dir, "busybox.tar"));
	docker(d, ["load", "-q", "-i", saved]);
	return d;
}

function swarm(d: Dockerd): Cluster {
	const cli = async (args: string[]) => {
		docker(d, args);
	};
	return {
		name: "swarm",
		cli,
		// --no-resolve-image: the image is local; no registry lookup (which would leave the namespaces).
		create: (n) =>
			["service", "create", "--detach", "--no-resolve-image", "--name", "s", "--replicas", String(n)].concat([
				"busybox:latest",
				"sleep",
				"3600",
			]),
		scale: (n) => ["service", "scale", "--detach", `s=${n}`],
		async remove() {
			docker(d, ["service", "rm", "s"]);
			// sleep ignores SIGTERM as pid 1: remove the containers rather than wait out the grace period.
			const deadline = Date.now() + 120_000;
			while (Date.now() < deadline) {
				const ids = docker(d, ["ps", "-aq"]).split("\n").filter(Boolean);
				if (ids.length === 0) return;
				docker(d, ["rm", "-f", ...ids], { allowFailure: true });
				await sleep(500);
			}
			throw new Error("swarm: containers still there 120 s after service rm");
		},
		async running() {
			const svcs = await dockerApi<{ Spec: { Name: string }; ServiceStatus?: { RunningTasks: number } }[]>(
				d.sock,
				"/v1.41/services?status=true",
			);
			return svcs.find((s) => s.Spec.Name === "s")?.ServiceStatus?.RunningTasks ?? 0;
		},
	};
}

async function stopDockerd(d: Dockerd): Promise<void> {
	if (d.proc.exitCode === null && d.proc.signalCode === null) {
		try {
			const ids = docker(d, ["ps", "-aq"], { allowFailure: true }).split("\n").filter(Boolean);
			if (ids.length > 0) docker(d, ["rm", "-f", ...ids], { allowFailure: true });
			docker(d, ["swarm", "leave", "--force"], { allowFailure: true });
		} catch {}
		d.proc.kill("SIGTERM");
		for (let i = 0; i < 300 && d.proc.exitCode === null && d.proc.signalCode === null; i++) await sleep(100);
		if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill("SIGKILL");
	}
	// Whatever dockerd started and left (containerd, shims) names our private roots: only those.
	for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
		try {
			if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(d.dir)) process.kill(Number(pid), "SIGKILL");
		} catch {}
	}
	const mounts = readFileSync("/proc/self/mountinfo", "utf8")
		.split("\n")
		.map((l) => l.split(" ")[4])
		.filter((m): m is string => !!m && m.startsWith(d.dir))
		.sort((a, b) => b.length - a.length);
	for (const m of mounts) spawnSync("umount", ["-l", m]);
	removeCgroupTree(d.cgroup);
}

/** Removes a cgroup and the ones under it (dockerd makes one per container), in every hierarchy. */
function removeCgroupTree(name: string): void {
	const base = "/sys/fs/cgroup";
	const roots = existsSync(`${base}/cgroup.controllers`) ? [base] : readdirSync(base).map((d) => `${base}/${d}`);
	const rm = (p: string) => {
		if (!existsSync(p)) return;
		for (const e of readdirSync(p, { withFileTypes: true })) if (e.isDirectory()) rm(join(p, e.name));
		try {
			rmdirSync(p);
		} catch {}
	};
	for (const r of roots) rm(join(r, name));
}

/** The host namespace's firewall rules and links: none of this bench's business, checked unchanged. */
function hostState(): string {
	const out = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" }).stdout ?? "";
	return [
		out(["iptables-save"]),
		out(["ip6tables-save"]),
		out(["nft", "list", "ruleset"]),
		out(["ip", "-o", "link"]).replace(/\d+: /g, ""),
	]
		.map((s) => s.replace(/^#.*$/gm, ""))
		.join("\n---\n");
}

// ---- the run ----------------------------------------------------------------------------------

async function main() {
	ensurePeers([
		{ bin: "dockerd", pkg: "docker.io", disableUnits: ["docker.service", "docker.socket", "containerd.service"] },
	]);
	const images = await ensureTestImages();
	const dir = mkdtempSync(join(tmpdir(), "bench-converge-"));
	let oursLab: LabRecord | undefined;
	let peerLab: LabRecord | undefined;
	let dockerd: Dockerd | undefined;
	let cleaned: Promise<void> | undefined;
	const cleanup = () =>
		(cleaned ??= (async () => {
			if (dockerd) await stopDockerd(dockerd).catch((e) => log(`stopping dockerd: ${e}`));
			for (const rec of [oursLab, peerLab]) if (rec) await destroyRecord(labRoot(), rec, 3000).catch(() => {});
			rmSync(dir, { recursive: true, force: true });
		})());
	process.on("SIGTERM", () => void cleanup().then(() => process.exit(143)));
	process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
	try {
		const before = hostState();
		log("starting a 3-node cluster lab (agents, registry) and a 1-node lab for dockerd");
		oursLab = await createLab({ name: uniqueName("cv"), nodes: 3, registry: true, cluster: true });
		peerLab = await createLab({ name: uniqueName("cs"), nodes: 1 });
		dockerd = await startDockerd(peerLab, images.archivePath, join(dir, "docker"));
		log(`dockerd ${docker(dockerd, ["version", "--format", "{{.Server.Version}}"]).trim()}: swarm initialised`);
		const systems = [ours(oursLab), swarm(dockerd)];
		const fig: Record<string, Record<"create" | "create_first" | "create_cli" | "scale" | "scale_cli", number[]>> = {};
		for (const s of systems) fig[s.name] = { create: [], create_first: [], create_cli: [], scale: [], scale_cli: [] };
		const perNode: Record<string, number> = {};
		for (let round = 1; round <= ROUNDS; round++) {
			// Alternate the systems phase by phase so that machine noise hits both alike.
			for (const s of systems) {
				const p = await phase(s, s.create(FIRST), FIRST);
				fig[s.name]!.create.push(p.total_ms);
				fig[s.name]!.create_first.push(p.first_ms);
				fig[s.name]!.create_cli.push(p.cli_ms);
				log(
					`round ${round} ${s.name}: create → ${FIRST} running in ${p.total_ms} ms (command ${p.cli_ms} ms, first task ${p.first_ms} ms)`,
				);
			}
			for (const s of systems) {
				const p = await phase(s, s.scale(SECOND), SECOND);
				fig[s.name]!.scale.push(p.total_ms);
				fig[s.name]!.scale_cli.push(p.cli_ms);
				log(`round ${round} ${s.name}: scale → ${SECOND} running in ${p.total_ms} ms (command ${p.cli_ms} ms)`);
			}
			if (round === 1) {
				const ps = await execInNode(oursLab, "n1", ["tsswarm", "service", "ps", "s", "--format", "json"]);
				const tasks = JSON.parse(ps.stdout) as { node: string; state: string; desiredState: string }[];
				for (const k of tasks.filter((k) => k.state === "running")) perNode[k.node] = (perNode[k.node] ?? 0) + 1;
				log(`tsswarm: running tasks per node ${JSON.stringify(perNode)}`);
			}
			for (const s of systems) await s.remove();
		}
		await stopDockerd(dockerd);
		const untouched = hostState() === before;
		if (!untouched) log("WARNING: the host namespace's firewall rules or links changed during the run");
		const summary = (name: string) => {
			const f = fig[name]!;
			return {
				create_30_ms: median(f.create),
				create_first_running_ms: median(f.create_first),
				scale_30_to_60_ms: median(f.scale),
				create_cmd_ms: median(f.create_cli),
				scale_cmd_ms: median(f.scale_cli),
			};
		};
		const o = { ...summary("tsswarm"), running_per_node: perNode };
		const p = { ...summary("swarm"), host_netns_untouched: untouched };
		const ratios = {
			create_30: +(o.create_30_ms / p.create_30_ms).toFixed(3),
			scale_30_to_60: +(o.scale_30_to_60_ms / p.scale_30_to_60_ms).toFixed(3),
		};
		await cleanup();
		process.stdout.write(
			`${JSON.stringify({ bench: "converge-vs-swarm", peer_name: "Docker Swarm 20.10 (Debian docker.io), 1 node, image preloaded", rounds: ROUNDS, ours: o, peer: p, ratios })}\n`,
		);
	} catch (err) {
		await cleanup();
		throw err;
	}
}

await main();
