// bench/container-start: 50 starts of a busybox container running `true`.
//  - runtime overhead: prepare (overlay mount + OCI spec) + runc run until the exit is reported,
//    measured in this process, vs `runc run` on a prepared bundle of the same rootfs, timed the same way;
//  - CLI start-up: `tsswarm --version` vs `node -e 0` with the same Node;
//  - end to end: `tsswarm run --rm busybox true` as a user types it (Docker's engine cannot run on
//    this machine, so that figure has no peer here and is reported on its own).
// Last line: {"bench":"container-start","ours":{...},"peer":{...},"ratios":{...}}.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Runtime } from "../../runtime/index.ts";
import { ensureTestImages } from "../../tests/helpers/images.ts";
import { removeCgroup, uniqueName } from "../../tests/helpers/index.ts";

const N = Number(process.env.BENCH_N ?? 50);
const log = (m: string) => process.stderr.write(`[container-start] ${m}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;
const repo = new URL("../..", import.meta.url).pathname;

const dir = mkdtempSync(join(tmpdir(), "bench-start-"));
const cgroupParent = uniqueName("tsw-b");
const rt = new Runtime({ root: join(dir, "data"), cgroupParent });
try {
	const images = await ensureTestImages();
	await rt.images.load(images.archivePath, { platform: "linux/amd64" });

	// Ours: everything the runtime does for a start, until the exit is reported.
	const ours: number[] = [];
	for (let i = 0; i < N; i++) {
		const t0 = performance.now();
		const c = await rt.prepare({ image: "busybox", cmd: ["true"] });
		const r = await rt.runAttached(c.id, "pipe");
		ours.push(performance.now() - t0);
		if (r.code !== 0) throw new Error(`container exited ${r.code}: ${r.stderr}`);
		await rt.remove(c.id);
	}
	log(`ours: median ${median(ours).toFixed(1)} ms, p90 ${p90(ours).toFixed(1)} ms`);

	// Peer: runc run on a prepared bundle (same rootfs content, same spec), timed the same way.
	const c = await rt.prepare({ image: "busybox", cmd: ["true"] });
	const bundle = join(dir, "bundle");
	cpSync(join(rt.inspect(c.id).dir, "rootfs"), join(bundle, "rootfs"), { recursive: true, verbatimSymlinks: true });
	const spec = JSON.parse(execFileSync("cat", [join(rt.inspect(c.id).dir, "config.json")], { encoding: "utf8" }));
	spec.root.path = join(bundle, "rootfs");
	spec.linux.cgroupsPath = `/${cgroupParent}/runc-peer`;
	writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
	await rt.remove(c.id);
	const runcRoot = join(dir, "runc-root");
	const peer: number[] = [];
	for (let i = 0; i < N; i++) {
		const id = `peer-${i}`;
		const t0 = performance.now();
		const r = spawnSync("runc", ["--root", runcRoot, "run", "--bundle", bundle, id], { stdio: "ignore" });
		peer.push(performance.now() - t0);
		if (r.status !== 0) throw new Error(`runc run exited ${r.status}`);
		spawnSync("runc", ["--root", runcRoot, "delete", "--force", id]);
	}
	log(`runc run: median ${median(peer).toFixed(1)} ms, p90 ${p90(peer).toFixed(1)} ms`);

	// CLI start-up.
	const cli = join(repo, "cli", "tsswarm");
	const time = (argv: string[], n = 20) => {
		const xs: number[] = [];
		for (let i = 0; i < n; i++) {
			const t0 = performance.now();
			const r = spawnSync(argv[0]!, argv.slice(1), { stdio: "ignore" });
			xs.push(performance.now() - t0);
			if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}`);
		}
		return median(xs);
	};
	const cliMs = time([cli, "--version"]);
	const nodeMs = time([process.execPath, "-e", "0"]);
	log(`CLI start-up: tsswarm --version ${cliMs.toFixed(1)} ms, node -e 0 ${nodeMs.toFixed(1)} ms`);

	// End to end, as typed.
	const e2e = time([cli, "run", "--rm", "--data-root", join(dir, "data"), "busybox", "true"], 10);
	log(`end to end: tsswarm run --rm busybox true ${e2e.toFixed(1)} ms (no Docker engine here to compare)`);

	const o = {
		start_ms_median: +median(ours).toFixed(2),
		start_ms_p90: +p90(ours).toFixed(2),
		cli_version_ms: +cliMs.toFixed(1),
		run_rm_e2e_ms: +e2e.toFixed(1),
	};
	const p = {
		start_ms_median: +median(peer).toFixed(2),
		start_ms_p90: +p90(peer).toFixed(2),
		cli_version_ms: +nodeMs.toFixed(1),
	};
	const ratios = {
		start_ms_median: +(o.start_ms_median / p.start_ms_median).toFixed(3),
		start_ms_p90: +(o.start_ms_p90 / p.start_ms_p90).toFixed(3),
		cli_version_ms: +(o.cli_version_ms / p.cli_version_ms).toFixed(3),
	};
	process.stdout.write(
		`${JSON.stringify({ bench: "container-start", peer_name: "runc run on a prepared bundle; node -e 0 for CLI start-up", ours: o, peer: p, ratios })}\n`,
	);
} finally {
	for (const c of rt.list({ all: true })) await rt.remove(c.id, { force: true }).catch(() => {});
	removeCgroup(cgroupParent);
	rmSync(dir, { recursive: true, force: true });
}
