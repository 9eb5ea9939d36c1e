// Shared by the benchmarks that compare us with Docker Swarm: a private dockerd inside a lab
// namespace of its own (private roots, socket, cgroup parent; no bridge, no iptables), swarm
// initialised, test images loaded from the archive, and everything it made removed afterwards.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type LabRecord, netnsArgv } from "../../cli/lab/index.ts";
import { testImageDockerArchive } from "../../tests/helpers/images.ts";
import { uniqueName } from "../../tests/helpers/index.ts";

export const DOCKER = "/usr/bin/docker"; // Debian's client, the same version as its dockerd

export interface Dockerd {
	dir: string;
	sock: string;
	cgroup: string;
	proc: ChildProcess;
}

export function dockerApi<T>(sock: string, path: string): Promise<T> {
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

export function docker(d: Dockerd, args: string[], opts: { allowFailure?: boolean } = {}): string {
	const r = spawnSync(DOCKER, ["-H", `unix://${d.sock}`, ...args], { encoding: "utf8" });
	if (r.status !== 0 && !opts.allowFailure)
		throw new Error(`docker ${args.join(" ")} exited ${r.status}: ${(r.stderr ?? "").trim()}`);
	return r.stdout ?? "";
}

/** dockerd inside the peer lab's node namespace, swarm initialised, the test archive's `images` loaded. */
export async function startDockerd(
	peerLab: LabRecord,
	archive: string,
	dir: string,
	images: ("busybox" | "httpd")[] = ["busybox"],
): Promise<Dockerd> {
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
	for (const image of images) {
		const saved = testImageDockerArchive(archive, join(dir, `${image}.tar`), image);
		docker(d, ["load", "-q", "-i", saved]);
	}
	return d;
}

/** `docker service rm`, then until no container is left (removed rather than waited out). */
export async function removeSwarmService(d: Dockerd, name: string): Promise<void> {
	docker(d, ["service", "rm", name]);
	// sleep ignores SIGTERM as pid 1: remove the containers rather than wait out the grace period.
	const deadline = Date.now() + 120_000;
	while (Date.now() < deadline) {
		const ids = docker(d, ["ps", "-aq"]).split("\n").filter(Boolean);
		if (ids.length === 0) return;
		docker(d, ["rm", "-f", ...ids], { allowFailure: true });
		await sleep(500);
	}
	throw new Error("swarm: containers still there 120 s after service rm");
}

export async function stopDockerd(d: Dockerd): Promise<void> {
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

/** The host namespace's firewall rules and links: none of a bench's business, checked unchanged. */
export function hostState(): string {
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
