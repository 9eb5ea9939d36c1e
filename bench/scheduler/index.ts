// bench/scheduler: placements/s of agent/manager/scheduler on 1,000 and 5,000 simulated nodes with
// 30,000 and 100,000 tasks (constraints, platforms, reservations, spread), and, on the shape of
// swarmkit's BenchmarkSchedulerConstraints{1k,5k}Nodes100kTasks, against swarmkit itself, same run.
// Last line: {"bench":"scheduler","ours":{...},"peer":{...},"ratios":{...}}.
import { parseArgs } from "node:util";
import { NodeSet, type SchedNode, type SchedTask, schedule } from "../../agent/manager/scheduler/index.ts";
import { buildPeer, type PeerBuild, runPeer } from "./peer.ts";
import { peerCluster, peerTasks, servicesCluster, servicesTasks } from "./workload.ts";

const { values } = parseArgs({
	options: {
		reps: { type: "string", default: "3" },
		"no-peer": { type: "boolean", default: false },
		"peer-timeout-min": { type: "string", default: "20" },
		"oneoff-tasks": { type: "string", default: "2000" },
	},
});
const REPS = Number(values.reps);
const ONEOFF = Number(values["oneoff-tasks"]);
const log = (m: string) => process.stderr.write(`[scheduler] ${m}\n`);
// swarmkit's published figure (its README/design notes: ~15,000 tasks/s at 100,000 nodes, 8 cores).
const PUBLISHED = 15_000;

interface Run {
	per_s: number;
	placed: number;
	pending: number;
	ms: number;
}

/** Places every task on a fresh NodeSet `reps` times; the median run by time. */
function measure(nodes: SchedNode[], tasks: () => SchedTask[], reps: number, grouping: "spec" | "task" = "spec"): Run {
	const runs: Run[] = [];
	for (let i = 0; i < reps; i++) {
		const set = new NodeSet(nodes);
		const batch = tasks();
		const t0 = performance.now();
		const r = schedule(batch, set, { grouping });
		const ms = performance.now() - t0;
		runs.push({
			per_s: Math.round(r.assignments.size / (ms / 1000)),
			placed: r.assignments.size,
			pending: r.pending.size,
			ms: +ms.toFixed(1),
		});
	}
	runs.sort((a, b) => a.ms - b.ms);
	return runs[runs.length >> 1] as Run;
}

function main(): void {
	const ours: Record<string, number> = {};
	log("warm-up: 1,000 nodes, 10,000 tasks");
	measure(servicesCluster(1000), () => servicesTasks(10_000), 1);

	for (const n of [1000, 5000]) {
		const nodes = servicesCluster(n);
		for (const t of [30_000, 100_000]) {
			const r = measure(nodes, () => servicesTasks(t), REPS);
			log(`services: ${n} nodes, ${t} tasks: ${r.per_s} placements/s (${r.ms} ms, ${r.pending} pending)`);
			ours[`services_${n / 1000}k_nodes_${t / 1000}k_tasks_per_s`] = r.per_s;
			ours[`services_${n / 1000}k_nodes_${t / 1000}k_tasks_pending`] = r.pending;
		}
	}
	let build: PeerBuild | undefined;
	let why = "";
	if (values["no-peer"]) why = "--no-peer";
	else {
		try {
			build = buildPeer();
		} catch (err) {
			why = (err as Error).message.split("\n").slice(0, 6).join(" ");
			log(`swarmkit could not be built here: ${why}`);
		}
	}
	// Ours on swarmkit's shape right before swarmkit's own run: the machine's load (shared cores)
	// then weighs on both alike.
	const timeout = Number(values["peer-timeout-min"]) * 60_000;
	const peer: Record<string, number> = {};
	for (const n of [1000, 5000]) {
		const k = `constraints_${n / 1000}k_nodes`;
		const nodes = peerCluster(n);
		const r = measure(nodes, () => peerTasks(100_000), REPS);
		log(`swarmkit's shape: ${n} nodes, 100000 tasks: ${r.per_s} placements/s (${r.ms} ms)`);
		ours[`${k}_100k_tasks_per_s`] = r.per_s;
		// swarmkit's benchmark tasks carry no spec version, so it places each as a group of one;
		// the same here (every task its own filter pass and tree) compares the algorithms alike.
		const o = measure(nodes, () => peerTasks(ONEOFF), 1, "task");
		log(`  one group per task: ${o.per_s} placements/s (${ONEOFF} tasks, ${o.ms} ms)`);
		ours[`${k}_one_group_per_task_per_s`] = o.per_s;
		if (!build) continue;
		const ns = runPeer(build, `BenchmarkSchedulerConstraints${n / 1000}kNodes100kTasks`, timeout);
		peer[`${k}_100k_tasks_per_s`] = Math.round(100_000 / (ns / 1e9));
		log(`  swarmkit: ${peer[`${k}_100k_tasks_per_s`]} tasks/s (${(ns / 1e9).toFixed(1)} s)`);
	}
	if (!build) {
		const published = {
			published_tasks_per_s: PUBLISHED,
			note: `not same-run (${why}): swarmkit's published figure, 100,000 nodes on 8 cores`,
		};
		const ratios = {
			services_5k_nodes_100k_tasks_vs_published: +(ours.services_5k_nodes_100k_tasks_per_s! / PUBLISHED).toFixed(3),
		};
		process.stdout.write(
			`${JSON.stringify({ bench: "scheduler", peer_name: "swarmkit (published figure, not same-run)", ours, peer: published, ratios })}\n`,
		);
		return;
	}
	const ratio = (a: number | undefined, b: number | undefined) => +((a ?? 0) / (b ?? 1)).toFixed(3);
	const ratios = {
		constraints_1k_nodes_100k_tasks: ratio(
			ours.constraints_1k_nodes_100k_tasks_per_s,
			peer.constraints_1k_nodes_100k_tasks_per_s,
		),
		constraints_5k_nodes_100k_tasks: ratio(
			ours.constraints_5k_nodes_100k_tasks_per_s,
			peer.constraints_5k_nodes_100k_tasks_per_s,
		),
		constraints_1k_nodes_one_group_per_task: ratio(
			ours.constraints_1k_nodes_one_group_per_task_per_s,
			peer.constraints_1k_nodes_100k_tasks_per_s,
		),
		constraints_5k_nodes_one_group_per_task: ratio(
			ours.constraints_5k_nodes_one_group_per_task_per_s,
			peer.constraints_5k_nodes_100k_tasks_per_s,
		),
	};
	process.stdout.write(
		`${JSON.stringify({ bench: "scheduler", peer_name: `${build.version}, BenchmarkSchedulerConstraints*, go test -benchtime 1x`, ours, peer, ratios })}\n`,
	);
}

main();
