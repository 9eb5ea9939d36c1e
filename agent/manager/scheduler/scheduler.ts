// The batch scheduler: groups the pending tasks that are interchangeable (same service, same
// placement-relevant spec), runs the filter pipeline once per group over every node, then places
// the group's tasks one by one through the spread tree, updating the NodeSet as it goes.
import type { Filter } from "./filters.ts";
import type { NodeSet } from "./node-info.ts";
import { Pipeline } from "./pipeline.ts";
import { SpreadTree } from "./spread.ts";
import type { SchedTask, SchedTaskSpec } from "./types.ts";

export interface ScheduleResult {
	/** Task id → node id, for every task placed (and tasks the NodeSet already had on a node). */
	assignments: Map<string, string>;
	/** Task id → why no node fits ("no suitable node (...)"). */
	pending: Map<string, string>;
}

export interface ScheduleOptions {
	/** Filters to run instead of defaultFilters() (in that order). */
	filters?: Filter[];
	/**
	 * "spec" (default): tasks of one service with equal placement-relevant specs share one filter pass.
	 * "task": every task is its own group (what swarmkit does for tasks without a spec version).
	 */
	grouping?: "spec" | "task";
}

// The fields a filter or the spread reads; tasks equal in these are interchangeable.
const specKeys = new WeakMap<SchedTaskSpec, string>();
function specKey(spec: SchedTaskSpec): string {
	let k = specKeys.get(spec);
	if (k === undefined) {
		const p = spec.placement;
		const r = spec.resources?.reservations;
		// JSON of each field: unambiguous, and cheaper than one JSON.stringify of a built array.
		const j = JSON.stringify;
		k = `${j(p?.constraints ?? [])}|${(p?.preferences ?? []).map((x) => j(x.spread)).join()}|${p?.maxReplicasPerNode ?? 0}|${(p?.platforms ?? []).map((x) => `${j(x.os)}/${j(x.architecture)}/${j(x.variant ?? "")}`).join()}|${r?.nanoCpus ?? 0}|${r?.memoryBytes ?? 0}|${(spec.hostPorts ?? []).map((x) => `${j(x.protocol)}/${x.port}`).join()}`;
		specKeys.set(spec, k);
	}
	return k;
}

/**
 * Places `tasks` on `nodes`, recording each placement in `nodes` (so a later batch sees it).
 * Tasks `nodes` already has on a node are reported as assigned there and not moved.
 */
export function schedule(tasks: Iterable<SchedTask>, nodes: NodeSet, options: ScheduleOptions = {}): ScheduleResult {
	const result: ScheduleResult = { assignments: new Map(), pending: new Map() };
	const groups = new Map<string, SchedTask[]>();
	const seen = new Set<string>();
	let oneOff = 0;
	for (const t of tasks) {
		if (seen.has(t.id)) continue;
		seen.add(t.id);
		const on = nodes.nodeOf(t.id);
		if (on !== undefined) {
			result.assignments.set(t.id, on);
			continue;
		}
		const key = options.grouping === "task" ? String(oneOff++) : `${t.serviceId}\0${specKey(t.spec)}`;
		const g = groups.get(key);
		if (g) g.push(t);
		else groups.set(key, [t]);
	}
	const pipeline = new Pipeline(options.filters);
	for (const group of groups.values()) scheduleGroup(group, nodes, pipeline, result);
	return result;
}

function scheduleGroup(group: SchedTask[], nodes: NodeSet, pipeline: Pipeline, result: ScheduleResult): void {
	const first = group[0] as SchedTask;
	pipeline.setTask(first);
	const tree = new SpreadTree(nodes, first.serviceId, first.spec.placement?.preferences ?? [], (n) =>
		pipeline.process(n),
	);
	let i = 0;
	for (; i < group.length; i++) {
		const node = tree.next();
		if (!node) break;
		const task = group[i] as SchedTask;
		nodes.addTask(node.node.id, task);
		result.assignments.set(task.id, node.node.id);
		tree.placed(pipeline.process(node));
	}
	if (i === group.length) return;
	// Every node refuses now: count why, over all of them, with the accounting as it ends up.
	pipeline.resetCounts();
	for (const n of nodes) pipeline.process(n);
	const reason = pipeline.reason();
	for (; i < group.length; i++) result.pending.set((group[i] as SchedTask).id, reason);
}
