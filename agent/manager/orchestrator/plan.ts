// The orchestrator's decisions as a pure function of (services, tasks, nodes, now): which tasks to
// create, which to shut down, which records to forget. Per slot (replicated) or node (global) it
// looks at the newest task and applies the restart policy, node failures and scale changes.
import { randomBytes } from "node:crypto";
import {
	isTerminal,
	type RestartPolicy,
	type Service,
	type Task,
	type TaskState,
	type TaskStatus,
} from "../../services/index.ts";

export interface PlanNode {
	id: string;
	availability: "active" | "pause" | "drain";
	/** Ready, or down since (ms epoch); unknown nodes (no status yet) count as ready. */
	down?: { since: number };
}

export interface Versioned<T> {
	version: number;
	value: T;
}

export type PlanOp =
	| { op: "create"; task: Task }
	| { op: "update"; id: string; version: number; task: Task }
	| { op: "delete"; id: string; version: number };

export interface PlanOptions {
	now: number;
	/** A task on a node down this long is replaced elsewhere (default 5 s). */
	downGraceMs?: number;
	/** Terminal tasks kept per slot for `service ps` history (default 5, as Swarm). */
	historyLimit?: number;
	/** Does a global service's placement admit this node (constraints, platform)? */
	globalFits?: (service: Service, node: PlanNode) => boolean;
	/** Is this slot's (or node's) history the rolling updater's to change now? Then plan leaves it. */
	owns?: (service: Service, history: Task[]) => boolean;
}

/** Swarm-like task ids: 25 characters of [0-9a-z]. */
export function newTaskId(): string {
	let s = "";
	for (const b of randomBytes(25)) s += (b % 36).toString(36);
	return s;
}

const live = (t: Task) => t.desiredState === "running" || t.desiredState === "ready";
const at = (s: TaskStatus) => Date.parse(s.timestamp) || 0;

export function newTask(svc: Service, now: number, where: { slot?: number; nodeId?: string }): Task {
	return {
		id: newTaskId(),
		serviceId: svc.id,
		serviceName: svc.spec.name,
		...(where.slot !== undefined ? { slot: where.slot } : {}),
		...(where.nodeId !== undefined ? { nodeId: where.nodeId } : {}),
		specVersion: svc.specVersion,
		spec: svc.spec.task,
		image: svc.spec.task.container.image,
		desiredState: "running",
		status: { state: "new", message: "created", timestamp: new Date(now).toISOString() },
		networks: [],
		createdAt: new Date(now).toISOString(),
	};
}

/** May a task that ended this way be replaced, and from when? undefined: never. */
function restartAt(policy: RestartPolicy, ended: Task, history: Task[], job: boolean): number | undefined {
	const st = ended.status;
	if (job && st.state === "complete") return undefined;
	const failed = st.state === "failed" || st.state === "rejected" || (st.exitCode ?? 0) !== 0;
	if (policy.condition === "none") return undefined;
	if (policy.condition === "on-failure" && !failed && st.state !== "orphaned") return undefined;
	if (policy.maxAttempts > 0) {
		const since = policy.windowMs > 0 ? at(st) - policy.windowMs : Number.NEGATIVE_INFINITY;
		const attempts = history.filter((t) => isTerminal(t.status.state) && at(t.status) >= since).length;
		if (attempts > policy.maxAttempts) return undefined;
	}
	return at(st) + policy.delayMs;
}

class Planner {
	readonly ops: PlanOp[] = [];
	private readonly o: Required<Omit<PlanOptions, "globalFits" | "owns">> & Pick<PlanOptions, "globalFits" | "owns">;
	private readonly nodes: Map<string, PlanNode>;
	private readonly versions = new Map<string, number>();

	constructor(nodes: PlanNode[], o: PlanOptions) {
		this.nodes = new Map(nodes.map((n) => [n.id, n]));
		this.o = { downGraceMs: 5000, historyLimit: 5, ...o };
	}

	track(tasks: Versioned<Task>[]): void {
		for (const t of tasks) this.versions.set(t.value.id, t.version);
	}

	private shutdown(t: Task, state?: TaskState, message?: string): void {
		if (!live(t)) return;
		const task: Task = { ...t, desiredState: "shutdown" };
		if (state && !isTerminal(t.status.state))
			task.status = { ...t.status, state, message: message ?? state, timestamp: new Date(this.o.now).toISOString() };
		this.ops.push({ op: "update", id: t.id, version: this.versions.get(t.id)!, task });
	}

	/** Is the node where this task runs gone, drained or down past the grace period? */
	private nodeLost(t: Task): string | undefined {
		if (!t.nodeId) return undefined;
		const n = this.nodes.get(t.nodeId);
		if (!n) return "its node left the cluster";
		if (n.availability === "drain") return "its node is drained";
		if (n.down && this.o.now - n.down.since >= this.o.downGraceMs) return "its node is down";
		return undefined;
	}

	/** One slot (or one node of a global service): keep one live task, replace per policy. */
	private slot(svc: Service, history: Task[], where: { slot?: number; nodeId?: string }, job: boolean): void {
		if (this.o.owns?.(svc, history)) return;
		const sorted = [...history].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
		const running = sorted.filter((t) => live(t) && !isTerminal(t.status.state));
		// After a partition heals a slot may hold two live tasks: keep the running (newest) one.
		const keep = running.find((t) => t.status.state === "running") ?? running[0];
		for (const t of running) if (t !== keep) this.shutdown(t, undefined);
		for (const t of sorted) if (live(t) && isTerminal(t.status.state)) this.shutdown(t);
		if (keep) {
			const lost = this.nodeLost(keep);
			if (!lost) return;
			this.shutdown(keep, "orphaned", `task replaced: ${lost}`);
			this.ops.push({ op: "create", task: newTask(svc, this.o.now, where) });
			return;
		}
		const latest = sorted[0];
		if (!latest) {
			this.ops.push({ op: "create", task: newTask(svc, this.o.now, where) });
			return;
		}
		const when = restartAt(svc.spec.task.restartPolicy, latest, sorted, job);
		if (when !== undefined && this.o.now >= when)
			this.ops.push({ op: "create", task: newTask(svc, this.o.now, where) });
	}

	service(svc: Service, tasks: Task[]): void {
		const mode = svc.spec.mode;
		if (mode.kind === "replicated") {
			const bySlot = group(tasks, (t) => t.slot);
			for (let s = 1; s <= mode.replicas; s++) this.slot(svc, bySlot.get(s) ?? [], { slot: s }, false);
			for (const [s, ts] of bySlot) if (s === undefined || s > mode.replicas) for (const t of ts) this.shutdown(t);
		} else if (mode.kind === "global" || mode.kind === "global-job") {
			const byNode = group(tasks, (t) => t.nodeId);
			const job = mode.kind === "global-job";
			for (const n of this.nodes.values()) {
				const ts = byNode.get(n.id) ?? [];
				// Down for less than the grace period (missed heartbeats, a restart): keep what it
				// runs, as for replicated tasks, and start nothing new there yet.
				if (n.down && this.o.now - n.down.since < this.o.downGraceMs) continue;
				const eligible = n.availability !== "drain" && !n.down && (this.o.globalFits?.(svc, n) ?? true);
				if (!eligible) {
					for (const t of ts) this.shutdown(t);
					continue;
				}
				if (job && ts.some((t) => t.status.state === "complete")) continue;
				this.slot(svc, ts, { nodeId: n.id }, job);
			}
			for (const [id, ts] of byNode) if (!id || !this.nodes.has(id)) for (const t of ts) this.shutdown(t);
		} else {
			this.job(svc, mode, tasks);
		}
		this.forget(tasks, svc);
	}

	/** replicated-job: run up to maxConcurrent at once until totalCompletions tasks completed. */
	private job(svc: Service, mode: { maxConcurrent: number; totalCompletions: number }, tasks: Task[]): void {
		const bySlot = group(tasks, (t) => t.slot);
		let done = 0;
		let active = 0;
		for (const [, ts] of bySlot) {
			if (ts.some((t) => t.status.state === "complete")) done++;
			else active++;
		}
		// Slots already started: each keeps one task going (restart policy) until it completes.
		for (const [s, ts] of bySlot)
			if (s !== undefined && !ts.some((t) => t.status.state === "complete")) this.slot(svc, ts, { slot: s }, true);
		let next = Math.max(0, ...[...bySlot.keys()].map((s) => s ?? 0)) + 1;
		while (active < mode.maxConcurrent && done + active < mode.totalCompletions) {
			this.ops.push({ op: "create", task: newTask(svc, this.o.now, { slot: next++ }) });
			active++;
		}
	}

	/** Terminal tasks that are shut down beyond the history limit (per slot/node) are deleted. */
	private forget(tasks: Task[], svc: Service | undefined): void {
		const keep = svc ? this.o.historyLimit : 0;
		const groups = group(tasks, (t) => (t.slot !== undefined ? `s${t.slot}` : `n${t.nodeId}`));
		for (const ts of groups.values()) {
			const old = ts
				.filter((t) => !live(t) && isTerminal(t.status.state))
				.sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))
				.slice(keep);
			for (const t of old) this.ops.push({ op: "delete", id: t.id, version: this.versions.get(t.id)! });
		}
	}

	/**
	 * A removed service's tasks are forgotten at once: the dispatcher tells each worker they are
	 * gone and it removes their containers (a node that is down meanwhile does so when it is back:
	 * its full assignment set no longer has them).
	 */
	orphan(tasks: Task[]): void {
		for (const t of tasks) this.ops.push({ op: "delete", id: t.id, version: this.versions.get(t.id)! });
	}
}

function group<K>(tasks: Task[], key: (t: Task) => K): Map<K, Task[]> {
	const m = new Map<K, Task[]>();
	for (const t of tasks) {
		const k = key(t);
		const l = m.get(k);
		if (l) l.push(t);
		else m.set(k, [t]);
	}
	return m;
}

/** Everything the orchestrator would write now, as store operations on the tasks table. */
export function plan(
	services: Versioned<Service>[],
	tasks: Versioned<Task>[],
	nodes: PlanNode[],
	o: PlanOptions,
): PlanOp[] {
	const p = new Planner(nodes, o);
	p.track(tasks);
	const byService = group(
		tasks.map((t) => t.value),
		(t) => t.serviceId,
	);
	const known = new Set(services.map((s) => s.value.id));
	for (const s of services) p.service(s.value, byService.get(s.value.id) ?? []);
	for (const [id, ts] of byService) if (!known.has(id)) p.orphan(ts);
	return p.ops;
}
