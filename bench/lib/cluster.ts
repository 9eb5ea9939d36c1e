// Shared by the benchmarks that run our 3-node cluster lab beside a private Docker Swarm: both labs
// brought up, torn down (also on failure or a signal), the host namespace checked untouched, and
// the tsswarm CLI run on n1 as typed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createLab, destroyRecord, execInNode, type LabRecord, labRoot } from "../../cli/lab/index.ts";
import { ensurePeers } from "../../scripts/peers.ts";
import { ensureTestImages } from "../../tests/helpers/images.ts";
import { uniqueName } from "../../tests/helpers/index.ts";
import { type Dockerd, docker, hostState, startDockerd, stopDockerd } from "./swarm.ts";

export interface SwarmLabs {
	/** Our 3-node cluster lab with its registry (busybox:latest, httpd:latest). */
	ours: LabRecord;
	dockerd: Dockerd;
}

/**
 * Runs `body` with our cluster lab and a swarm-initialised dockerd (in a 1-node lab of its own,
 * `dockerImages` loaded), then removes both; `hostUntouched` says whether the host namespace's
 * firewall rules and links are as they were.
 */
export async function withSwarmLabs<T>(
	opts: { bench: string; dockerImages: ("busybox" | "httpd")[] },
	body: (labs: SwarmLabs) => Promise<T>,
): Promise<{ result: T; hostUntouched: boolean }> {
	const log = (m: string) => process.stderr.write(`[${opts.bench}] ${m}\n`);
	ensurePeers([
		{ bin: "dockerd", pkg: "docker.io", disableUnits: ["docker.service", "docker.socket", "containerd.service"] },
	]);
	const images = await ensureTestImages();
	const dir = mkdtempSync(join(tmpdir(), `bench-${opts.bench}-`));
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
	const onTerm = () => void cleanup().then(() => process.exit(143));
	const onInt = () => void cleanup().then(() => process.exit(130));
	process.on("SIGTERM", onTerm);
	process.on("SIGINT", onInt);
	try {
		const before = hostState();
		log("starting a 3-node cluster lab (agents, registry) and a 1-node lab for dockerd");
		oursLab = await createLab({ name: uniqueName("cv"), nodes: 3, registry: true, cluster: true });
		peerLab = await createLab({ name: uniqueName("cs"), nodes: 1 });
		dockerd = await startDockerd(peerLab, images.archivePath, join(dir, "docker"), opts.dockerImages);
		log(`dockerd ${docker(dockerd, ["version", "--format", "{{.Server.Version}}"]).trim()}: swarm initialised`);
		const result = await body({ ours: oursLab, dockerd });
		await stopDockerd(dockerd);
		const hostUntouched = hostState() === before;
		if (!hostUntouched) log("WARNING: the host namespace's firewall rules or links changed during the run");
		return { result, hostUntouched };
	} finally {
		await cleanup();
		process.off("SIGTERM", onTerm);
		process.off("SIGINT", onInt);
	}
}

/** `tsswarm ARGS` on n1; throws unless it exits 0. */
export async function tsswarm(rec: LabRecord, args: string[]): Promise<string> {
	const r = await execInNode(rec, "n1", ["tsswarm", ...args]);
	if (r.code !== 0) throw new Error(`tsswarm ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
	return r.stdout;
}

/** `tsswarm service rm`, then until no task container is left on any node. */
export async function removeOurService(rec: LabRecord, name: string): Promise<void> {
	await tsswarm(rec, ["service", "rm", name]);
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
}
