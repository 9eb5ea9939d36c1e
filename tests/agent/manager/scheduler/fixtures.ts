// Builders for scheduler tests: nodes and tasks with defaults a test overrides field by field.
import type { SchedNode, SchedTask, SchedTaskSpec } from "../../../../agent/manager/scheduler/index.ts";

export const GB = 1024 ** 3;
export const CPU = 1e9;

export function node(id: string, over: Partial<SchedNode> = {}): SchedNode {
	return {
		id,
		hostname: `host-${id}`,
		role: "worker",
		availability: "active",
		ready: true,
		labels: {},
		platform: { os: "linux", architecture: "amd64" },
		resources: { nanoCpus: 4 * CPU, memoryBytes: 8 * GB },
		...over,
	};
}

/** `count` tasks of one service sharing one spec, ids `${service}.1` ... */
export function tasks(service: string, count: number, spec: SchedTaskSpec = {}): SchedTask[] {
	return Array.from({ length: count }, (_, i) => ({ id: `${service}.${i + 1}`, serviceId: service, spec }));
}

/** node id → how many of the assignments went there. */
export function perNode(assignments: Map<string, string>): Map<string, number> {
	const m = new Map<string, number>();
	for (const n of assignments.values()) m.set(n, (m.get(n) ?? 0) + 1);
	return m;
}
