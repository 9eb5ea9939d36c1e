// bench/update-vs-swarm: a rolling update of 30 replicas (parallelism 2, delay 0, stop-first, the
// default monitor and failure action) from busybox to httpd (same `sleep 3600` command), timed from
// `service update --detach --image` as typed to 30 tasks running on the new image and none left on
// the old one: ours on a 3-node cluster lab (images from the lab's registry) vs Docker Swarm
// (Debian docker.io, one node, both images loaded from the same test archive, --no-resolve-image)
// in the same run. Both polled through their own API every 100 ms. Goal (issue 14): ours <= 0.5x.
// `sleep` ignores SIGTERM as pid 1, so both services are created with --stop-grace-period 1s
// (otherwise every stop waits out the 10 s default on both sides).
// Options: --rounds N (1; medians). Last line: {"bench":"update-vs-swarm","ours":{...},"peer":{...},"ratios":{...}}.
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { call } from "../../agent/api/index.ts";
import { type LabRecord, REGISTRY_ADDRESS, REGISTRY_PORT } from "../../cli/lab/index.ts";
import { removeOurService, tsswarm, withSwarmLabs } from "../lib/cluster.ts";
import { type Dockerd, docker, dockerApi, removeSwarmService } from "../lib/swarm.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "1" } } });
const ROUNDS = Number(values.rounds);
const REPLICAS = 30;
const POLL_MS = 100;
const PHASE_TIMEOUT_MS = 300_000;
const UPDATE = ["--update-parallelism", "2", "--update-delay", "0s"];
const log = (m: string) => process.stderr.write(`[update-vs-swarm] ${m}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r0 = (x: number) => Math.round(x);

/** A task as both sides' APIs report it, reduced to what convergence needs. */
interface TaskView {
	running: boolean;
	newImage: boolean;
}

interface Cluster {
	name: string;
	cli(args: string[]): Promise<void>;
	create: string[];
	update: string[];
	remove(): Promise<void>;
	/** Service s's tasks whose desired and actual state are both running. */
	tasks(): Promise<TaskView[]>;
}

interface Counts {
	running: number;
	onNew: number;
	onOld: number;
}

async function counts(c: Cluster): Promise<Counts> {
	const run = (await c.tasks()).filter((t) => t.running);
	const onNew = run.filter((t) => t.newImage).length;
	return { running: run.length, onNew, onOld: run.length - onNew };
}

/** Runs `args` as typed, then polls until `done`; the time, the command's own and the fewest running seen. */
async function phase(c: Cluster, args: string[], done: (n: Counts) => boolean) {
	const t0 = performance.now();
	await c.cli(args);
	const cliMs = performance.now() - t0;
	let n: Counts = { running: 0, onNew: 0, onOld: 0 };
	let minRunning = Number.POSITIVE_INFINITY;
	let firstNewMs: number | undefined;
	while (performance.now() - t0 < PHASE_TIMEOUT_MS) {
		n = await counts(c).catch(() => n);
		minRunning = Math.min(minRunning, n.running);
		if (n.onNew > 0) firstNewMs ??= performance.now() - t0;
		if (done(n))
			return {
				total_ms: r0(performance.now() - t0),
				cli_ms: r0(cliMs),
				first_new_running_ms: r0(firstNewMs ?? 0),
				min_running: minRunning,
			};
		await sleep(POLL_MS);
	}
	throw new Error(`${c.name}: ${JSON.stringify(n)} after ${PHASE_TIMEOUT_MS / 1000} s`);
}

// ---- ours -------------------------------------------------------------------------------------

function ours(rec: LabRecord): Cluster {
	const reg = `${REGISTRY_ADDRESS}:${REGISTRY_PORT}`;
	const base = ["service", "create", "--detach", "--stop-grace-period", "1s", "--name", "s"];
	return {
		name: "tsswarm",
		cli: async (args) => {
			await tsswarm(rec, args);
		},
		create: [...base, "--replicas", String(REPLICAS), `${reg}/busybox:latest`, "sleep", "3600"],
		update: ["service", "update", "--detach", ...UPDATE, "--image", `${reg}/httpd:latest`, "s"],
		remove: () => removeOurService(rec, "s"),
		async tasks() {
			const rows = await call<{ image: string; state: string; desiredState: string }[]>(
				rec.nodes[0]!.dir,
				"POST",
				"/v1/services/ps",
				{ ref: "s" },
				5000,
			);
			return rows.map((r) => ({
				running: r.state === "running" && r.desiredState === "running",
				newImage: r.image.includes("/httpd:"),
			}));
		},
	};
}

// ---- Docker Swarm -----------------------------------------------------------------------------

function swarm(d: Dockerd): Cluster {
	// --no-resolve-image: the images are local; no registry lookup (which would leave the namespaces).
	const base = ["service", "create", "--detach", "--no-resolve-image", "--stop-grace-period", "1s", "--name", "s"];
	return {
		name: "swarm",
		cli: async (args) => {
			docker(d, args);
		},
		create: [...base, "--replicas", String(REPLICAS), "busybox:latest", "sleep", "3600"],
		update: ["service", "update", "--detach", "--no-resolve-image", ...UPDATE, "--image", "httpd:latest", "s"],
		remove: () => removeSwarmService(d, "s"),
		async tasks() {
			const filters = encodeURIComponent(JSON.stringify({ service: ["s"] }));
			const rows = await dockerApi<
				{ DesiredState: string; Status: { State: string }; Spec: { ContainerSpec: { Image: string } } }[]
			>(d.sock, `/v1.41/tasks?filters=${filters}`);
			return rows.map((r) => ({
				running: r.Status.State === "running" && r.DesiredState === "running",
				newImage: r.Spec.ContainerSpec.Image.startsWith("httpd:"),
			}));
		},
	};
}

// ---- the run ----------------------------------------------------------------------------------

async function main() {
	const fig: Record<string, Record<"create" | "update" | "update_cli" | "first_new" | "min_running", number[]>> = {};
	const { hostUntouched } = await withSwarmLabs(
		{ bench: "update-vs-swarm", dockerImages: ["busybox", "httpd"] },
		async ({ ours: oursLab, dockerd }) => {
			const systems = [ours(oursLab), swarm(dockerd)];
			for (const s of systems) fig[s.name] = { create: [], update: [], update_cli: [], first_new: [], min_running: [] };
			for (let round = 1; round <= ROUNDS; round++) {
				for (const s of systems) {
					const p = await phase(s, s.create, (n) => n.onOld >= REPLICAS);
					fig[s.name]!.create.push(p.total_ms);
					log(`round ${round} ${s.name}: create → ${REPLICAS} running in ${p.total_ms} ms`);
				}
				// One system at a time, alternating, so that machine noise hits both alike.
				for (const s of systems) {
					const p = await phase(s, s.update, (n) => n.onNew >= REPLICAS && n.onOld === 0);
					const f = fig[s.name]!;
					f.update.push(p.total_ms);
					f.update_cli.push(p.cli_ms);
					f.first_new.push(p.first_new_running_ms);
					f.min_running.push(p.min_running);
					log(
						`round ${round} ${s.name}: update → ${REPLICAS} on the new image in ${p.total_ms} ms (command ${p.cli_ms} ms, first new task ${p.first_new_running_ms} ms, fewest running ${p.min_running})`,
					);
				}
				for (const s of systems) await s.remove();
			}
		},
	);
	const summary = (name: string) => {
		const f = fig[name]!;
		return {
			update_30_ms: median(f.update),
			update_first_new_running_ms: median(f.first_new),
			update_cmd_ms: median(f.update_cli),
			update_min_running: Math.min(...f.min_running),
			create_30_ms: median(f.create),
		};
	};
	const o = summary("tsswarm");
	const p = { ...summary("swarm"), host_netns_untouched: hostUntouched };
	const ratios = { update_30: +(o.update_30_ms / p.update_30_ms).toFixed(3) };
	process.stdout.write(
		`${JSON.stringify({ bench: "update-vs-swarm", peer_name: "Docker Swarm 20.10 (Debian docker.io), 1 node, images preloaded", rounds: ROUNDS, settings: "parallelism 2, delay 0s, stop-first, --stop-grace-period 1s both sides", ours: o, peer: p, ratios })}\n`,
	);
}

await main();
