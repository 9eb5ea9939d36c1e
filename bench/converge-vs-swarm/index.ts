// bench/converge-vs-swarm: time from `service create --replicas 30` (busybox sleep, --detach, as
// typed) to 30 tasks running, then from `service scale s=60` to 60 running: ours on a 3-node
// cluster lab (image pulled from the lab's registry by each node) vs Docker Swarm (Debian docker.io,
// `docker swarm init` on one node, busybox loaded from the same test archive) in the same run.
// Both are polled through their own API every 100 ms. Goal (issue 13): ours <= 0.5x Swarm's time.
// dockerd runs inside a 1-node lab namespace of its own (network traffic stays in namespaces made
// here) with private data/exec roots, pidfile, socket and cgroup parent, and no bridge or iptables;
// the host namespace's firewall rules and links are compared before and after.
// Options: --rounds N (1; medians; after round 1 our nodes have the image cached, Swarm's always has). Last line: {"bench":"converge-vs-swarm","ours":{...},"peer":{...},"ratios":{...}}.
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { call } from "../../agent/api/index.ts";
import { execInNode, type LabRecord, REGISTRY_ADDRESS, REGISTRY_PORT } from "../../cli/lab/index.ts";
import { removeOurService, tsswarm, withSwarmLabs } from "../lib/cluster.ts";
import { type Dockerd, docker, dockerApi, removeSwarmService } from "../lib/swarm.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "1" } } });
const ROUNDS = Number(values.rounds);
const FIRST = 30;
const SECOND = 60;
const POLL_MS = 100;
const PHASE_TIMEOUT_MS = 300_000;
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
		await tsswarm(rec, args);
	};
	return {
		name: "tsswarm",
		cli,
		create: (n) => ["service", "create", "--detach", "--name", "s", "--replicas", String(n), image, "sleep", "3600"],
		scale: (n) => ["service", "scale", `s=${n}`, "--detach"],
		remove: () => removeOurService(rec, "s"),
		async running() {
			const rows = await call<{ name: string; running: number }[]>(n1.dir, "GET", "/v1/services", undefined, 5000);
			return rows.find((r) => r.name === "s")?.running ?? 0;
		},
	};
}

// ---- Docker Swarm -----------------------------------------------------------------------------

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
		remove: () => removeSwarmService(d, "s"),
		async running() {
			const svcs = await dockerApi<{ Spec: { Name: string }; ServiceStatus?: { RunningTasks: number } }[]>(
				d.sock,
				"/v1.41/services?status=true",
			);
			return svcs.find((s) => s.Spec.Name === "s")?.ServiceStatus?.RunningTasks ?? 0;
		},
	};
}

// ---- the run ----------------------------------------------------------------------------------

async function main() {
	const fig: Record<string, Record<"create" | "create_first" | "create_cli" | "scale" | "scale_cli", number[]>> = {};
	const perNode: Record<string, number> = {};
	const { hostUntouched: untouched } = await withSwarmLabs(
		{ bench: "converge-vs-swarm", dockerImages: ["busybox"] },
		async ({ ours: oursLab, dockerd }) => {
			const systems = [ours(oursLab), swarm(dockerd)];
			for (const s of systems) fig[s.name] = { create: [], create_first: [], create_cli: [], scale: [], scale_cli: [] };
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
		},
	);
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
	process.stdout.write(
		`${JSON.stringify({ bench: "converge-vs-swarm", peer_name: "Docker Swarm 20.10 (Debian docker.io), 1 node, image preloaded", rounds: ROUNDS, ours: o, peer: p, ratios })}\n`,
	);
}

await main();
