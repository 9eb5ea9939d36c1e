// `tsswarm lab demo` (what `npm run demo` runs): a lab with its registry, shown working end to end.
// It grows with each module, toward the full cluster demo of ROADMAP.md.

import { spawn } from "node:child_process";
import { existsSync, openSync } from "node:fs";
import { join } from "node:path";
import { socketPath } from "../../agent/api/index.ts";
import { describeLab } from "./commands.ts";
import { createLab } from "./create.ts";
import { showOverlay } from "./demo-overlay.ts";
import { destroyRecord } from "./destroy.ts";
import { execInNode, labNodeEnv, netnsArgv } from "./exec.ts";
import { withInterrupts } from "./interrupt.ts";
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
			await showCluster(rec, signal);
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
	// Real containers: each platform's busybox pulled by n1's runtime and run with runc (arm through
	// qemu-user binfmt), then a web server on n1 reached from n2.
	const cli = new URL("../tsswarm", import.meta.url).pathname;
	const reg = `${rec.registry.address}:${rec.registry.port}`;
	const tsswarm = async (on: string, args: string[]) => {
		const r = await execInNode(rec, on, [cli, ...args], { signal });
		if (r.code !== 0)
			throw new Error(`tsswarm ${args.join(" ")} on ${on} failed: ${r.stderr.trim().split("\n").at(-1)}`);
		return r.stdout.trim();
	};
	say("\ncontainers (tsswarm run on n1: pull from the lab registry, overlayfs, runc):");
	for (const p of platforms) {
		const started = performance.now();
		const out = await tsswarm(node, ["run", "--rm", "--platform", p, `${reg}/busybox:latest`, "uname", "-m"]);
		say(
			`  ${p.padEnd(15)} uname -m = ${out.padEnd(8)} (${Math.round(performance.now() - started)} ms including the pull)`,
		);
	}
	const web = await tsswarm(node, ["run", "-d", "--name", "web", "--network", "host", `${reg}/httpd:latest`]);
	const other = rec.nodes[1] ?? rec.nodes[0]!;
	const page = await waitForPage(rec, other.name, `http://${rec.nodes[0]!.address}/`, signal);
	say(
		`  httpd container ${web.slice(0, 12)} on ${node}; ${other.name} fetched: ${page.replace(/<[^>]+>/g, "").trim()}`,
	);
	await tsswarm(node, ["rm", "-f", "web"]);
	await showOverlay(rec, cli, reg, say, signal);
}

async function waitForPage(rec: LabRecord, from: string, url: string, signal: AbortSignal): Promise<string> {
	const deadline = Date.now() + 10_000;
	for (;;) {
		const r = await execInNode(rec, from, ["curl", "-fsS", "--max-time", "2", url], { signal });
		if (r.code === 0) return r.stdout;
		if (Date.now() > deadline) throw new Error(`${url} did not answer from ${from}: ${r.stderr.trim()}`);
		await new Promise((res) => setTimeout(res, 100));
	}
}

/** One agent per node, `init` on n1, `join` with the printed token elsewhere, then the membership view. */
async function showCluster(rec: LabRecord, signal: AbortSignal): Promise<void> {
	const cli = new URL("../tsswarm", import.meta.url).pathname;
	for (const n of rec.nodes) {
		const log = openSync(join(n.dir, "agent.log"), "a");
		const [cmd, ...args] = netnsArgv(rec, n.name, [cli, "agent", "--listen-addr", `${n.address}:2377`]);
		spawn(cmd!, args, { stdio: ["ignore", log, log], env: labNodeEnv(rec, n), detached: true }).unref();
	}
	const deadline = Date.now() + 20_000;
	while (!rec.nodes.every((n) => existsSync(socketPath(n.dir)))) {
		if (Date.now() > deadline)
			throw new Error("the agents did not start within 20 s; see agent.log in each node's dir");
		await new Promise((r) => setTimeout(r, 50));
	}
	const run = async (on: string, args: string[]) => {
		const r = await execInNode(rec, on, [cli, ...args], { signal });
		if (r.code !== 0) throw new Error(`tsswarm ${args[0]} on ${on}: ${r.stderr.trim()}`);
		return r.stdout;
	};
	const first = rec.nodes[0]!;
	// Overlay networks get their subnets from the lab's pool, as a site would pass its own.
	await run(first.name, ["init", "--default-addr-pool", "198.19.0.0/16"]);
	const token = /TSWARM-1-\S+/.exec(await run(first.name, ["join-token", "manager"]))?.[0] ?? "";
	const managers = rec.nodes.slice(0, 3);
	say(
		`\ncluster: tsswarm agent on every node; tsswarm init on ${first.name}; tsswarm join --token ${token.slice(0, 22)}... ${first.address}:2377 on ${managers
			.slice(1)
			.map((n) => n.name)
			.join(", ")} (managers: Raft voters)`,
	);
	for (const n of managers.slice(1)) await run(n.name, ["join", "--token", token, `${first.address}:2377`]);
	if (rec.nodes.length > 3) {
		const wtoken = /TSWARM-1-\S+/.exec(await run(first.name, ["join-token", "worker"]))?.[0] ?? "";
		for (const n of rec.nodes.slice(3)) await run(n.name, ["join", "--token", wtoken, `${first.address}:2377`]);
	}
	const t0 = performance.now();
	for (;;) {
		const view = JSON.parse(await run(first.name, ["node", "ls", "--format", "json"])) as Array<{ state: string }>;
		if (view.filter((v) => v.state === "alive").length === rec.nodes.length) break;
		if (performance.now() - t0 > 20_000) throw new Error("the cluster did not converge within 20 s");
		await new Promise((r) => setTimeout(r, 100));
	}
	// Every manager holds the replicated store once it has caught up (it has the ingress network).
	for (const m of managers.slice(1)) {
		while (!(await run(m.name, ["network", "ls", "-q"])).trim()) {
			if (performance.now() - t0 > 30_000) throw new Error(`${m.name} did not replicate the store within 30 s`);
			await new Promise((r) => setTimeout(r, 100));
		}
	}
	say(`converged in ${Math.round(performance.now() - t0)} ms after the last join; tsswarm node ls on ${first.name}:`);
	for (const line of (await run(first.name, ["node", "ls"])).trimEnd().split("\n")) say(`  ${line}`);
	const last = managers.at(-1)!;
	await run(last.name, ["network", "create", "-d", "overlay", "app"]);
	say(
		`\ntsswarm network create -d overlay app on ${last.name} (written through the Raft leader); network ls on ${first.name}:`,
	);
	for (const line of (await run(first.name, ["network", "ls"])).trimEnd().split("\n")) say(`  ${line}`);
}
