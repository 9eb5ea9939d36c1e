// bench/pull: pulling busybox (linux/amd64) from a registry on loopback into a fresh store, ours
// vs `skopeo copy docker://... oci:DIR` of the same image; rounds alternate so noise hits both.
// Last line: {"bench":"pull","ours":{...},"peer":{...},"ratios":{...}}.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageStore } from "../../runtime/index.ts";
import { withRegistry } from "../../tests/helpers/registry.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const teardowns: Array<() => unknown> = [];
const dir = mkdtempSync(join(tmpdir(), "bench-pull-"));
try {
	const reg = await withRegistry({ teardown: (f) => teardowns.push(f) });
	const ref = `${reg.hostPort}/busybox:latest`;
	const ours: number[] = [];
	const peer: number[] = [];
	for (let i = 0; i < ROUNDS; i++) {
		const root = join(dir, `ours-${i}`);
		let t0 = performance.now();
		await new ImageStore({ root }).pull(ref, { platform: "linux/amd64" });
		ours.push(performance.now() - t0);
		t0 = performance.now();
		const r = spawnSync("skopeo", [
			"copy",
			"--quiet",
			"--src-tls-verify=false",
			"--override-arch",
			"amd64",
			`docker://${ref}`,
			`oci:${join(dir, `skopeo-${i}`)}:busybox`,
		]);
		peer.push(performance.now() - t0);
		if (r.status !== 0) throw new Error(`skopeo failed: ${r.stderr}`);
	}
	const o = { pull_ms_median: +median(ours).toFixed(1) };
	const p = { pull_ms_median: +median(peer).toFixed(1) };
	process.stderr.write(
		`[pull] ours ${o.pull_ms_median} ms (download + verify + unpack), skopeo copy ${p.pull_ms_median} ms (download + verify)\n`,
	);
	process.stdout.write(
		`${JSON.stringify({ bench: "pull", peer_name: "skopeo copy to an OCI layout", ours: o, peer: p, ratios: { pull_ms_median: +(o.pull_ms_median / p.pull_ms_median).toFixed(3) } })}\n`,
	);
} finally {
	for (const f of teardowns.reverse()) await f();
	rmSync(dir, { recursive: true, force: true });
}
