// `tsswarm lab demo` (what `npm run demo` runs): a lab with its registry, shown working end to end.
// It grows with each module, toward the full cluster demo of ROADMAP.md.
import { join } from "node:path";
import { describeLab } from "./commands.ts";
import { createLab } from "./create.ts";
import { destroyRecord } from "./destroy.ts";
import { execInNode } from "./exec.ts";
import { withInterrupts } from "./interrupt.ts";
import { unpackFromRegistry } from "./registry.ts";
import { type LabRecord, labRoot, writeRecord } from "./state.ts";

const say = (msg: string) => process.stdout.write(`${msg}\n`);

export async function labDemo(o: { nodes: number; name: string; keep: boolean }): Promise<void> {
	if (process.getuid?.() !== 0) throw new Error("the lab demo needs root (network namespaces)");
	const root = labRoot();
	await withInterrupts(async (signal) => {
		const t0 = performance.now();
		const rec = await createLab({
			name: o.name,
			nodes: o.nodes,
			registry: true,
			signal,
			onProgress: (m) => say(`[lab ${o.name}] ${m}`),
		});
		try {
			say(`[lab ${o.name}] up in ${Math.round(performance.now() - t0)} ms`);
			say(describeLab(rec));
			await showPings(rec, signal);
			await showRegistry(rec, signal);
			if (o.keep) {
				writeRecord(root, { ...rec, persistent: true });
				say(`\nleft up (--keep). Remove it with: tsswarm lab down --name ${rec.name}`);
				return;
			}
		} catch (err) {
			await destroyRecord(root, rec, 0);
			throw err;
		}
		const t1 = performance.now();
		await destroyRecord(root, rec);
		say(`\n[lab ${o.name}] torn down in ${Math.round(performance.now() - t1)} ms; nothing left behind`);
	});
}

async function showPings(rec: LabRecord, signal: AbortSignal): Promise<void> {
	say("\nping matrix (round-trip ms, one ping each way over the hub bridge):");
	say(`      ${rec.nodes.map((n) => n.name.padStart(7)).join("")}`);
	for (const from of rec.nodes) {
		const cells = await Promise.all(
			rec.nodes.map(async (to) => {
				if (to === from) return "-".padStart(7);
				const r = await execInNode(rec, from.name, ["ping", "-c", "1", "-W", "2", to.address], { signal });
				const ms = /time=([\d.]+)/.exec(r.stdout)?.[1];
				if (r.code !== 0 || !ms) throw new Error(`${from.name} cannot reach ${to.name} (${to.address})`);
				return ms.padStart(7);
			}),
		);
		say(`  ${from.name.padEnd(4)}${cells.join("")}`);
	}
}

async function showRegistry(rec: LabRecord, signal: AbortSignal): Promise<void> {
	if (!rec.registry) return;
	const node = rec.nodes[0]!.name;
	const get = async (path: string, accept?: string) => {
		const argv = [
			"curl",
			"-fsS",
			"--max-time",
			"5",
			...(accept ? ["-H", `Accept: ${accept}`] : []),
			`${rec.registry!.url}${path}`,
		];
		const r = await execInNode(rec, node, argv, { signal });
		if (r.code !== 0) throw new Error(`GET ${rec.registry!.url}${path} from ${node} failed: ${r.stderr.trim()}`);
		return JSON.parse(r.stdout) as unknown;
	};
	const catalog = (await get("/v2/_catalog")) as { repositories?: string[] };
	say(`\nregistry ${rec.registry.url}, seen from ${node}: repositories ${JSON.stringify(catalog.repositories ?? [])}`);
	const index = (await get("/v2/busybox/manifests/latest", "application/vnd.oci.image.index.v1+json")) as {
		manifests?: Array<{ platform?: { os: string; architecture: string; variant?: string } }>;
	};
	const platforms = (index.manifests ?? [])
		.map((m) => m.platform)
		.filter((p) => p !== undefined)
		.map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join("/"));
	say(`busybox:latest is an OCI index over: ${platforms.join(", ")}`);
	// Each platform's image, fetched on n1 and run there (arm through qemu-user binfmt).
	for (const p of platforms) {
		const dir = join(rec.dir, "demo-rootfs", p.replaceAll("/", "-"));
		const started = performance.now();
		await unpackFromRegistry({
			url: rec.registry.url,
			repo: "busybox",
			platform: p,
			destDir: dir,
			netns: rec.nodes[0]!.netns,
			signal,
		});
		const r = await execInNode(rec, node, ["chroot", dir, "/bin/busybox", "uname", "-m"], { signal });
		if (r.code !== 0) throw new Error(`busybox for ${p} did not run on ${node}: ${r.stderr.trim()}`);
		say(
			`  ${p.padEnd(15)} pulled, unpacked and run on ${node} in ${Math.round(performance.now() - started)} ms: uname -m = ${r.stdout.trim()}`,
		);
	}
}
