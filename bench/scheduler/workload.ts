// Simulated clusters and services for bench/scheduler: seeded, so every run places the same tasks.
// "services": zones, racks, tiers, arm64 nodes, a few drained/down, services with constraints,
// platforms, reservations and spread. "peer": the shape of swarmkit's BenchmarkSchedulerConstraints*.
import type { SchedNode, SchedTask, SchedTaskSpec } from "../../agent/manager/scheduler/index.ts";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function rng(seed: number): () => number {
	let s = seed >>> 0 || 1;
	return () => {
		s ^= s << 13;
		s ^= s >>> 17;
		s ^= s << 5;
		return (s >>> 0) / 2 ** 32;
	};
}

export function servicesCluster(count: number, seed = 1): SchedNode[] {
	const r = rng(seed);
	return Array.from({ length: count }, (_, i) => {
		const zr = r();
		const zone = zr < 0.4 ? "z1" : zr < 0.75 ? "z2" : "z3";
		const arm = r() < 0.2;
		return {
			id: `node-${i.toString(36).padStart(5, "0")}`,
			hostname: `host-${i}`,
			role: i < 5 ? "manager" : "worker",
			availability: r() < 0.02 ? "drain" : "active",
			ready: r() >= 0.01,
			labels: { zone, rack: `${zone}-r${Math.floor(r() * 8)}`, tier: r() < 0.67 ? "web" : "db" },
			platform: { os: "linux", architecture: arm ? "arm64" : "amd64" },
			resources: { nanoCpus: 16e9, memoryBytes: 64 * GiB },
		};
	});
}

const KINDS: SchedTaskSpec[] = [
	{
		placement: {
			constraints: ["node.labels.tier==web"],
			preferences: [{ spread: "node.labels.zone" }],
			platforms: [
				{ os: "linux", architecture: "amd64" },
				{ os: "linux", architecture: "arm64" },
			],
		},
		resources: { reservations: { nanoCpus: 2e7, memoryBytes: 16 * MiB } },
	},
	{
		placement: {
			constraints: ["node.role!=manager", "node.platform.os==linux"],
			preferences: [{ spread: "node.labels.zone" }, { spread: "node.labels.rack" }],
		},
		resources: { reservations: { nanoCpus: 5e7, memoryBytes: 32 * MiB } },
	},
	{
		placement: {
			constraints: ["node.labels.tier!=db"],
			preferences: [{ spread: "node.labels.zone" }],
			platforms: [{ os: "linux", architecture: "arm64" }],
		},
		resources: { reservations: { nanoCpus: 1e7, memoryBytes: 8 * MiB } },
	},
	{
		placement: { preferences: [{ spread: "node.labels.zone" }], maxReplicasPerNode: 40 },
		resources: { reservations: { memoryBytes: 64 * MiB } },
	},
];

/**
 * `total` tasks in services of `perService` replicas, cycling over the kinds above. Each task has
 * its own copy of its spec, as tasks decoded from the store would.
 */
export function servicesTasks(total: number, perService = 500): SchedTask[] {
	const out: SchedTask[] = [];
	for (let s = 0; out.length < total; s++) {
		const spec = JSON.stringify(KINDS[s % KINDS.length]);
		for (let i = 0; i < perService && out.length < total; i++) {
			out.push({ id: `svc${s}.${i + 1}`, serviceId: `svc${s}`, spec: JSON.parse(spec) as SchedTaskSpec });
		}
	}
	return out;
}

/**
 * swarmkit's benchScheduler(nodes, tasks, networkConstraints=true): every node ready, every third
 * one has the network plugin the tasks need (here a label and a constraint), tasks of no service.
 */
export function peerCluster(count: number): SchedNode[] {
	return Array.from({ length: count }, (_, i) => ({
		id: `node-${i}`,
		hostname: `name${i}`,
		role: "worker",
		availability: "active",
		ready: true,
		labels: (i % 3 === 0 ? { plugin: "network" } : {}) as Record<string, string>,
		platform: { os: "linux", architecture: "amd64" },
		resources: { nanoCpus: 0, memoryBytes: 0 },
	}));
}

export function peerTasks(count: number): SchedTask[] {
	return Array.from({ length: count }, (_, i) => ({
		id: `task${i}`,
		serviceId: "",
		spec: { placement: { constraints: ["node.labels.plugin==network"] } },
	}));
}
