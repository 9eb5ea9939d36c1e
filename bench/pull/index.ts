// bench/pull: pulling busybox (linux/amd64) into a fresh store, ours vs `skopeo copy
// docker://... oci:DIR` of the same image, from two registries: the lab's (198.18.0.254:5000 in its
// own namespace, reached from a lab node's namespace, as a worker pulls) and one on loopback.
// Ours is timed inside one pulling process (as in the agent), with unpack (what a pull is) and
// without (download + verify, what skopeo copy does); skopeo is timed as the process it is.
// Last line: {"bench":"pull","ours":{...},"peer":{...},"ratios":{...}}.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withLab } from "../../tests/helpers/lab.ts";
import { withRegistry } from "../../tests/helpers/registry.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r1 = (x: number) => +x.toFixed(1);
const teardowns: Array<() => unknown> = [];
const t = { teardown: (f: () => unknown) => teardowns.push(f) };
const dir = mkdtempSync(join(tmpdir(), "bench-pull-"));
const rounds = new URL("./rounds.ts", import.meta.url).pathname;

/** `ns`: argv prefix that enters the namespace (empty for loopback). */
function measure(ns: string[], ref: string, tag: string) {
	const full: number[] = [];
	const download: number[] = [];
	const skopeo: number[] = [];
	const r = spawnSync(
		ns[0] ?? process.execPath,
		[...ns.slice(1), ...(ns.length ? [process.execPath] : []), rounds, ref, join(dir, `${tag}-ours`), String(ROUNDS)],
		{ encoding: "utf8" },
	);
	if (r.status !== 0) throw new Error(`our pull failed: ${r.stderr}`);
	const got = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { full: number[]; download: number[] };
	full.push(...got.full);
	download.push(...got.download);
	for (let i = 0; i < ROUNDS; i++) {
		const argv = [
			...ns,
			"skopeo",
			"copy",
			"--quiet",
			"--src-tls-verify=false",
			"--override-arch",
			"amd64",
			`docker://${ref}`,
			`oci:${join(dir, `${tag}-skopeo-${i}`)}:busybox`,
		];
		const t0 = performance.now();
		const s = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
		skopeo.push(performance.now() - t0);
		if (s.status !== 0) throw new Error(`skopeo failed: ${s.stderr}`);
	}
	return { full: r1(median(full)), download: r1(median(download)), skopeo: r1(median(skopeo)) };
}

try {
	const lab = await withLab(t, { nodes: 1, registry: true });
	const node = lab.nodes[0]!;
	const labRef = `${new URL(lab.registryUrl!).host}/busybox:latest`;
	const viaLab = measure(["ip", "netns", "exec", node.netns], labRef, "lab");
	process.stderr.write(
		`[pull] lab registry ${labRef} from ${node.name}: ours ${viaLab.full} ms (with unpack), ${viaLab.download} ms (download + verify); skopeo copy ${viaLab.skopeo} ms\n`,
	);
	const reg = await withRegistry(t);
	const loop = measure([], `${reg.hostPort}/busybox:latest`, "loop");
	process.stderr.write(
		`[pull] loopback registry: ours ${loop.full} ms (with unpack), ${loop.download} ms (download + verify); skopeo copy ${loop.skopeo} ms\n`,
	);
	const ours = {
		lab_pull_ms_median: viaLab.full,
		lab_download_only_ms_median: viaLab.download,
		loopback_pull_ms_median: loop.full,
		loopback_download_only_ms_median: loop.download,
	};
	const peer = { lab_skopeo_copy_ms_median: viaLab.skopeo, loopback_skopeo_copy_ms_median: loop.skopeo };
	const ratios = {
		lab_pull: +(viaLab.full / viaLab.skopeo).toFixed(3),
		lab_download_only: +(viaLab.download / viaLab.skopeo).toFixed(3),
		loopback_pull: +(loop.full / loop.skopeo).toFixed(3),
		loopback_download_only: +(loop.download / loop.skopeo).toFixed(3),
	};
	process.stdout.write(
		`${JSON.stringify({ bench: "pull", peer_name: "skopeo copy docker:// -> oci: (same image, same registry, same namespace)", rounds: ROUNDS, ours, peer, ratios })}\n`,
	);
} finally {
	for (const f of teardowns.reverse()) await f();
	rmSync(dir, { recursive: true, force: true });
}
