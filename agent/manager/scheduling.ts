// The scheduler loop (leader only): pending tasks get a node, or a reason why none fits, written
// back as the task's status. The scheduler itself (./scheduler) is pure; this file maps store
// records onto its shapes and its answers onto store writes.
import type { Service, Task } from "../services/index.ts";
import type { ClusterStore, Node, Op, StoreLogger } from "../store/index.ts";
import { type LeaderComponent, reactiveLoop } from "./leader.ts";
import { commitOps, onTables } from "./orchestrator/index.ts";
import type { PlanNode } from "./orchestrator/plan.ts";
import {
	NodeSet,
	nodeMatches,
	normalizePlatform,
	parseConstraints,
	platformSatisfies,
	type SchedNode,
	type SchedTask,
	schedule,
} from "./scheduler/index.ts";

export function schedNode(n: Node): SchedNode {
	return {
		id: n.id,
		hostname: n.hostname,
		role: n.role,
		availability: n.availability,
		ready: n.status?.state !== "down",
		labels: n.labels,
		platform: n.platform,
		resources: n.resources,
	};
}

function schedTask(t: Task, svc: Service | undefined): SchedTask {
	const hostPorts = (svc?.spec.endpoint.ports ?? [])
		.filter((p) => p.publishMode === "host" && p.publishedPort !== undefined)
		.map((p) => ({ protocol: p.protocol, port: p.publishedPort! }));
	return {
		id: t.id,
		serviceId: t.serviceId,
		spec: {
			placement: t.spec.placement,
			resources: { reservations: t.spec.resources.reservations },
			hostPorts,
		},
	};
}

const counts = (t: Task) =>
	(t.desiredState === "running" || t.desiredState === "ready") &&
	t.nodeId !== undefined &&
	!["new", "pending", "complete", "shutdown", "failed", "rejected", "remove", "orphaned"].includes(t.status.state);

/** For the orchestrator: may a global service run on this node (constraints, platform)? */
export function globalFits(store: ClusterStore): (svc: Service, node: PlanNode) => boolean {
	return (svc, pn) => {
		const rec = store.get("nodes", pn.id)?.value;
		if (!rec) return false;
		const n = schedNode(rec);
		const pl = svc.spec.task.placement;
		if (!nodeMatches(parseConstraints(pl.constraints), n)) return false;
		if (pl.platforms.length === 0) return true;
		const np = normalizePlatform(n.platform);
		return pl.platforms.some((p) => platformSatisfies(normalizePlatform(p), np));
	};
}

export class Scheduler implements LeaderComponent {
	readonly name = "scheduler";
	private readonly store: ClusterStore;
	private readonly log: StoreLogger;

	constructor(store: ClusterStore, log: StoreLogger) {
		this.store = store;
		this.log = log;
	}

	run(signal: AbortSignal): Promise<void> {
		return reactiveLoop(
			signal,
			onTables(this.store, ["tasks", "nodes"]),
			async () => {
				await this.pass();
			},
			2000,
		);
	}

	async pass(): Promise<number> {
		const tasks = this.store.list("tasks");
		const pending = tasks.filter(
			(r) =>
				r.value.status.state === "pending" && (r.value.desiredState === "running" || r.value.desiredState === "ready"),
		);
		if (pending.length === 0) return 0;
		const services = new Map(this.store.list("services").map((s) => [s.id, s.value]));
		const nodes = new NodeSet(this.store.list("nodes").map((n) => schedNode(n.value)));
		for (const r of tasks)
			if (counts(r.value)) nodes.addTask(r.value.nodeId!, schedTask(r.value, services.get(r.value.serviceId)));
		const now = new Date().toISOString();
		const ops: Op[] = [];
		const assign = (r: (typeof tasks)[number], nodeId: string) =>
			ops.push({
				op: "update",
				table: "tasks",
				id: r.id,
				version: r.version,
				value: {
					...r.value,
					nodeId,
					status: { state: "assigned", message: "scheduler assigned task to node", timestamp: now },
				},
			});
		// A global task was made for its node (the orchestrator checked the placement): assign it.
		const free = pending.filter((r) => {
			if (r.value.slot !== undefined || !r.value.nodeId) return true;
			assign(r, r.value.nodeId);
			return false;
		});
		const res = schedule(
			free.map((r) => schedTask(r.value, services.get(r.value.serviceId))),
			nodes,
		);
		for (const r of free) {
			const to = res.assignments.get(r.id);
			if (to) assign(r, to);
			const why = res.pending.get(r.id);
			if (why && r.value.status.err !== why)
				ops.push({
					op: "update",
					table: "tasks",
					id: r.id,
					version: r.version,
					value: {
						...r.value,
						status: { ...r.value.status, err: why, message: "pending task scheduling", timestamp: now },
					},
				});
		}
		if (ops.length === 0) return 0;
		const n = await commitOps(this.store, ops, this.log);
		this.log.debug({ assigned: res.assignments.size, pending: res.pending.size }, "scheduler pass");
		return n;
	}
}
