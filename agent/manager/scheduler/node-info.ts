// Per-node accounting the filters and the spread read: tasks assigned (active) per service and in
// total, resources left after reservations, host ports in use. A NodeSet is the scheduler's view
// of the cluster; schedule() updates it as it places tasks, so it stays true between batches.
import { type NormalPlatform, normalizePlatform } from "./platform.ts";
import type { HostPort, SchedNode, SchedResources, SchedTask } from "./types.ts";

export function hostPortKey(p: HostPort): string {
	return `${p.protocol}/${p.port}`;
}

export function taskReservations(task: SchedTask): SchedResources {
	const r = task.spec.resources?.reservations;
	return { nanoCpus: r?.nanoCpus ?? 0, memoryBytes: r?.memoryBytes ?? 0 };
}

export class NodeInfo {
	node: SchedNode;
	/** Insertion order in its NodeSet: the last tie-breaker, so placement is deterministic. */
	readonly seq: number;
	platform: NormalPlatform;
	/** Tasks assigned here that count (desired running), by id. */
	readonly tasks = new Map<string, SchedTask>();
	activeTasks = 0;
	readonly tasksByService = new Map<string, number>();
	readonly available: SchedResources;
	/** "tcp/80" → how many tasks here publish it in host mode. */
	readonly usedHostPorts = new Map<string, number>();
	/**
	 * Scratch for the spread while it places one group: serviceTasks() of that group's service,
	 * kept as a field because the node heap compares it millions of times in a large batch.
	 */
	groupTasks = 0;

	constructor(node: SchedNode, seq: number) {
		this.node = node;
		this.seq = seq;
		this.platform = normalizePlatform(node.platform);
		this.available = { nanoCpus: node.resources.nanoCpus, memoryBytes: node.resources.memoryBytes };
	}

	serviceTasks(serviceId: string): number {
		return this.tasksByService.get(serviceId) ?? 0;
	}

	/** A new description of the node (labels, availability, resources...); its tasks stay. */
	describe(node: SchedNode): void {
		this.node = node;
		this.platform = normalizePlatform(node.platform);
		this.available.nanoCpus = node.resources.nanoCpus;
		this.available.memoryBytes = node.resources.memoryBytes;
		for (const t of this.tasks.values()) {
			const r = taskReservations(t);
			this.available.nanoCpus -= r.nanoCpus;
			this.available.memoryBytes -= r.memoryBytes;
		}
	}

	/** Adds a task; false when it is already here. */
	addTask(task: SchedTask): boolean {
		if (this.tasks.has(task.id)) return false;
		this.tasks.set(task.id, task);
		this.activeTasks++;
		this.tasksByService.set(task.serviceId, this.serviceTasks(task.serviceId) + 1);
		const r = task.spec.resources?.reservations;
		if (r) {
			this.available.nanoCpus -= r.nanoCpus ?? 0;
			this.available.memoryBytes -= r.memoryBytes ?? 0;
		}
		const ports = task.spec.hostPorts;
		if (ports) {
			for (const p of ports) {
				const k = hostPortKey(p);
				this.usedHostPorts.set(k, (this.usedHostPorts.get(k) ?? 0) + 1);
			}
		}
		return true;
	}

	/** Removes a task; false when it is not here. */
	removeTask(taskId: string): boolean {
		const task = this.tasks.get(taskId);
		if (!task) return false;
		this.tasks.delete(taskId);
		this.activeTasks--;
		const left = this.serviceTasks(task.serviceId) - 1;
		if (left > 0) this.tasksByService.set(task.serviceId, left);
		else this.tasksByService.delete(task.serviceId);
		const r = taskReservations(task);
		this.available.nanoCpus += r.nanoCpus;
		this.available.memoryBytes += r.memoryBytes;
		for (const p of task.spec.hostPorts ?? []) {
			const k = hostPortKey(p);
			const n = (this.usedHostPorts.get(k) ?? 0) - 1;
			if (n > 0) this.usedHostPorts.set(k, n);
			else this.usedHostPorts.delete(k);
		}
		return true;
	}
}

export class NodeSet implements Iterable<NodeInfo> {
	readonly #nodes = new Map<string, NodeInfo>();
	readonly #taskNode = new Map<string, string>();
	#seq = 0;

	constructor(nodes: Iterable<SchedNode> = []) {
		for (const n of nodes) this.addNode(n);
	}

	get size(): number {
		return this.#nodes.size;
	}

	[Symbol.iterator](): Iterator<NodeInfo> {
		return this.#nodes.values();
	}

	get(nodeId: string): NodeInfo | undefined {
		return this.#nodes.get(nodeId);
	}

	/** Adds a node, or describes a known one anew (keeping its tasks). */
	addNode(node: SchedNode): NodeInfo {
		const known = this.#nodes.get(node.id);
		if (known) {
			known.describe(node);
			return known;
		}
		const info = new NodeInfo(node, this.#seq++);
		this.#nodes.set(node.id, info);
		return info;
	}

	removeNode(nodeId: string): boolean {
		const info = this.#nodes.get(nodeId);
		if (!info) return false;
		for (const id of info.tasks.keys()) this.#taskNode.delete(id);
		return this.#nodes.delete(nodeId);
	}

	/** The node a task is assigned to, if any. */
	nodeOf(taskId: string): string | undefined {
		return this.#taskNode.get(taskId);
	}

	/** Records a task that runs (or will) on a node; a task already on another node moves. */
	addTask(nodeId: string, task: SchedTask): boolean {
		const info = this.#nodes.get(nodeId);
		if (!info) return false;
		const was = this.#taskNode.get(task.id);
		if (was !== undefined && was !== nodeId) this.#nodes.get(was)?.removeTask(task.id);
		this.#taskNode.set(task.id, nodeId);
		return info.addTask(task);
	}

	/** Forgets a task (it ended, or its desired state is no longer running). */
	removeTask(taskId: string): boolean {
		const nodeId = this.#taskNode.get(taskId);
		if (nodeId === undefined) return false;
		this.#taskNode.delete(taskId);
		return this.#nodes.get(nodeId)?.removeTask(taskId) ?? false;
	}
}
