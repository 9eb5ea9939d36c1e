// bench/container-start: 50 starts of a busybox container running `true`.
//  - runtime overhead, measured in this process from "start a container" (image present) to "its
//    exit is reported": the worker's path (prepare + start under the shim + wait, with the spares
//    made ahead as the agent's Runtime does (FIFOs, the log daemon); and without, as a one-shot
//    `tsswarm run -d`, which finds the data root's log daemon running when the agent's is),
//    and the foreground path (prepare + runAttached) for reference; vs `runc run` on a prepared
//    bundle of the same rootfs and spec, timed the same way;
//  - end to end: `tsswarm run --rm busybox true` as typed vs `docker run --rm busybox true` on a
//    dockerd started here (own data-root, exec-root, pidfile, socket; no bridge, no iptables), the
//    image loaded from the same test archive; peer null with the reason if dockerd cannot run;
//  - CLI start-up: `tsswarm --version` vs `node -e 0` with the same Node.
// Rounds alternate ours and the peer so that noise from other load hits both.
// Last line: {"bench":"container-start","ours":{...},"peer":{...},"ratios":{...}}.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Runtime, stopLogDaemon } from "../../runtime/index.ts";
import { busyboxDockerArchive, ensureTestImages } from "../../tests/helpers/images.ts";
import { removeCgroup, uniqueName } from "../../tests/helpers/index.ts";

const N = Number(process.env.BENCH_N ?? 50);
const log = (m: string) => process.stderr.write(`[container-start] ${m}\n`);
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => sorted(xs)[Math.floor(xs.length * 0.9)]!;
const r2 = (x: number) => +x.toFixed(2);
const repo = new URL("../..", import.meta.url).pathname;
const cli = join(repo, "cli", "tsswarm");

const dir = mkdtempSync(join(tmpdir(), "bench-start-"));
const cgroupParent = uniqueName("tsw-b");
const dockerCgroup = uniqueName("tsw-dk");
const data = join(dir, "data");
const rt = new Runtime({ root: data, cgroupParent });
// The agent's runtime makes spares ahead (a one-shot CLI does not): the worker's path.
const agentRt = new Runtime({ root: data, cgroupParent, prewarmShim: true, sweep: false });
let dockerd: ChildProcess | undefined;

function timeSpawn(argv: string[], env?: NodeJS.ProcessEnv): number {
	const t0 = performance.now();
	const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], env });
	const ms = performance.now() - t0;
	if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}: ${r.stderr}`);
	return ms;
}

/** dockerd on a private socket, or the reason it cannot run here. */
async function startDockerd(archive: string): Promise<{ sock: string } | { reason: string }> {
	if (spawnSync("dockerd", ["--version"]).status !== 0)
		return { reason: "dockerd is not installed (apt-get install docker.io)" };
	const d = join(dir, "docker");
	for (const s of ["data", "exec"]) mkdirSync(join(d, s), { recursive: true });
	const sock = join(d, "docker.sock");
	const out = join(d, "dockerd.log");
	const args = [
		...["--data-root", join(d, "data"), "--exec-root", join(d, "exec"), "--pidfile", join(d, "docker.pid")],
		...["-H", `unix://${sock}`, "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"],
		...["--storage-driver", "overlay2", "--cgroup-parent", `/${dockerCgroup}`, "--log-level=error"],
	];
	writeFileSync(out, "");
	dockerd = spawn("dockerd", args, { stdio: ["ignore", "ignore", "pipe"] });
	dockerd.stderr?.on("data", (b: Buffer) => writeFileSync(out, b, { flag: "a" }));
	const deadline = Date.now() + 30_000;
	while (Date.now() < deadline) {
		if (dockerd.exitCode !== null)
			return { reason: `dockerd exited ${dockerd.exitCode}: ${readFileSync(out, "utf8").slice(-300)}` };
		if (
			existsSync(sock) &&
			spawnSync("/usr/bin/docker", ["-H", `unix://${sock}`, "info"], { stdio: "ignore" }).status === 0
		) {
			const saved = busyboxDockerArchive(archive, join(d, "busybox.tar"));
			execFileSync("/usr/bin/docker", ["-H", `unix://${sock}`, "load", "-q", "-i", saved]);
			return { sock };
		}
		await sleep(100);
	}
	return { reason: `dockerd did not answer within 30 s: ${readFileSync(out, "utf8").slice(-300)}` };
}

async function stopDockerd(): Promise<void> {
	if (!dockerd?.pid || dockerd.exitCode !== null) return;
	dockerd.kill("SIGTERM");
	for (let i = 0; i < 150 && dockerd.exitCode === null; i++) await sleep(100);
	if (dockerd.exitCode === null) dockerd.kill("SIGKILL");
	const d = join(dir, "docker");
	const mounts = readFileSync("/proc/self/mountinfo", "utf8")
		.split("\n")
		.map((l) => l.split(" ")[4])
		.filter((m): m is string => !!m && m.startsWith(d))
		.sort((a, b) => b.length - a.length);
	for (const m of mounts) spawnSync("umount", ["-l", m]);
	removeCgroup(dockerCgroup);
}

try {
	const images = await ensureTestImages();
	await rt.images.load(images.archivePath, { platform: "linux/amd64" });

	// The peer's bundle: the same rootfs content and spec as our containers get.
	const c0 = await rt.prepare({ image: "busybox", cmd: ["true"] });
	const bundle = join(dir, "bundle");
	cpSync(join(rt.inspect(c0.id).dir, "rootfs"), join(bundle, "rootfs"), { recursive: true, verbatimSymlinks: true });
	const spec = JSON.parse(readFileSync(join(rt.inspect(c0.id).dir, "config.json"), "utf8"));
	spec.root.path = join(bundle, "rootfs");
	spec.linux.cgroupsPath = `/${cgroupParent}/runc-peer`;
	writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
	await rt.remove(c0.id);
	const runcRoot = join(dir, "runc-root");

	const worker: number[] = [];
	const cold: number[] = [];
	const attached: number[] = [];
	const startOnly: number[] = [];
	const peer: number[] = [];
	for (let i = 0; i < N; i++) {
		// The worker's path: prepare, start (shim, hand-off to the log daemon), wait for the exit code.
		let t0 = performance.now();
		const c = await agentRt.prepare({ image: "busybox", cmd: ["true"] });
		const t1 = performance.now();
		await agentRt.start(c.id);
		const code = await agentRt.wait(c.id);
		const t2 = performance.now();
		worker.push(t2 - t0);
		startOnly.push(t2 - t1);
		if (code !== 0) throw new Error(`container exited ${code}`);
		await agentRt.remove(c.id);
		// The same without spares made ahead (tsswarm run -d: a fresh process per container).
		t0 = performance.now();
		const k = await rt.prepare({ image: "busybox", cmd: ["true"] });
		await rt.start(k.id);
		await rt.wait(k.id);
		cold.push(performance.now() - t0);
		await rt.remove(k.id);
		// The foreground path (tsswarm run without -d): runc run in this process's child, no shim.
		t0 = performance.now();
		const a = await rt.prepare({ image: "busybox", cmd: ["true"] });
		const r = await rt.runAttached(a.id, "pipe");
		attached.push(performance.now() - t0);
		if (r.code !== 0) throw new Error(`container exited ${r.code}: ${r.stderr}`);
		await rt.remove(a.id);
		// runc run of the prepared bundle.
		const id = `peer-${i}`;
		peer.push(timeSpawn(["runc", "--root", runcRoot, "run", "--bundle", bundle, id]));
		spawnSync("runc", ["--root", runcRoot, "delete", "--force", id]);
	}
	log(`worker path (prepare+start+wait): median ${median(worker).toFixed(1)} ms, p90 ${p90(worker).toFixed(1)} ms`);
	log(`  of which start+wait: median ${median(startOnly).toFixed(1)} ms`);
	log(`worker path without spares made ahead: median ${median(cold).toFixed(1)} ms`);
	log(`foreground (prepare+runAttached): median ${median(attached).toFixed(1)} ms`);
	log(`runc run: median ${median(peer).toFixed(1)} ms, p90 ${p90(peer).toFixed(1)} ms`);

	// CLI start-up, alternating.
	const cliMs: number[] = [];
	const nodeMs: number[] = [];
	for (let i = 0; i < 30; i++) {
		cliMs.push(timeSpawn([cli, "--version"]));
		nodeMs.push(timeSpawn([process.execPath, "-e", "0"]));
	}
	log(`CLI start-up: tsswarm --version ${median(cliMs).toFixed(1)} ms, node -e 0 ${median(nodeMs).toFixed(1)} ms`);

	// End to end as typed, vs docker run --rm on a dockerd of our own.
	const docker = await startDockerd(images.archivePath);
	const env = { ...process.env, TSSWARM_CGROUP_PARENT: cgroupParent };
	const e2e: number[] = [];
	const dk: number[] = [];
	for (let i = 0; i < N; i++) {
		e2e.push(timeSpawn([cli, "run", "--rm", "--data-root", data, "busybox", "true"], env));
		if ("sock" in docker)
			dk.push(timeSpawn(["/usr/bin/docker", "-H", `unix://${docker.sock}`, "run", "--rm", "busybox", "true"]));
	}
	log(
		`end to end: tsswarm run --rm busybox true ${median(e2e).toFixed(1)} ms; docker run --rm: ${"sock" in docker ? `${median(dk).toFixed(1)} ms` : docker.reason}`,
	);
	await stopDockerd();

	const o = {
		worker_start_ms_median: r2(median(worker)),
		worker_start_ms_p90: r2(p90(worker)),
		start_wait_only_ms_median: r2(median(startOnly)),
		cold_shim_start_ms_median: r2(median(cold)),
		attached_start_ms_median: r2(median(attached)),
		cli_version_ms: r2(median(cliMs)),
		run_rm_e2e_ms: r2(median(e2e)),
	};
	const runcMed = r2(median(peer));
	const p = {
		runc_run_ms_median: runcMed,
		runc_run_ms_p90: r2(p90(peer)),
		node_e0_ms: r2(median(nodeMs)),
		docker_run_rm_ms: "sock" in docker ? r2(median(dk)) : null,
		...("reason" in docker ? { docker_reason: docker.reason } : {}),
	};
	const ratios = {
		worker_start_vs_runc: r2(o.worker_start_ms_median / runcMed),
		start_wait_only_vs_runc: r2(o.start_wait_only_ms_median / runcMed),
		cold_shim_start_vs_runc: r2(o.cold_shim_start_ms_median / runcMed),
		attached_start_vs_runc: r2(o.attached_start_ms_median / runcMed),
		cli_version_vs_node: r2(o.cli_version_ms / p.node_e0_ms),
		run_rm_e2e_vs_docker: p.docker_run_rm_ms === null ? null : r2(o.run_rm_e2e_ms / p.docker_run_rm_ms),
	};
	process.stdout.write(
		`${JSON.stringify({ bench: "container-start", peer_name: "runc run on a prepared bundle; node -e 0; docker run --rm (Debian docker.io 20.10)", n: N, ours: o, peer: p, ratios })}\n`,
	);
} finally {
	await stopDockerd().catch(() => {});
	for (const c of rt.list({ all: true })) await rt.remove(c.id, { force: true }).catch(() => {});
	await stopLogDaemon(data);
	removeCgroup(`${cgroupParent}/runc-peer`);
	removeCgroup(cgroupParent);
	rmSync(dir, { recursive: true, force: true });
}
