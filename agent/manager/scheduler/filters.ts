// The filters a task passes through, in order, swarmkit's filter.go shape: setTask() says whether
// the filter concerns this task (once per group of equal tasks), check() judges one node, explain()
// words the refusal of `count` nodes the way `docker service ps` shows it.
import { type Constraint, nodeMatches, parseConstraints } from "./constraint.ts";
import { hostPortKey, type NodeInfo, taskReservations } from "./node-info.ts";
import { formatPlatform, type NormalPlatform, normalizePlatform, platformSatisfies } from "./platform.ts";
import type { HostPort, SchedResources, SchedTask } from "./types.ts";

export interface Filter {
	readonly name: string;
	/** Prepares for a task; false when the filter does not apply to it (then check() is not called). */
	setTask(task: SchedTask): boolean;
	/** Can the task given to setTask() run on this node? */
	check(node: NodeInfo): boolean;
	/** Why `count` nodes failed this filter. */
	explain(count: number): string;
}

const nodes = (count: number) => (count === 1 ? "1 node" : `${count} nodes`);

/** The node is up (Ready): a Down node takes nothing. */
export class ReadyFilter implements Filter {
	readonly name = "ready";
	setTask(_task?: SchedTask): boolean {
		return true;
	}
	check(n: NodeInfo): boolean {
		return n.node.ready;
	}
	explain(count: number): string {
		return `${nodes(count)} not ready`;
	}
}

/** Only an `active` node takes new tasks (`pause` keeps what it runs, `drain` moves it away). */
export class AvailabilityFilter implements Filter {
	readonly name = "availability";
	setTask(_task?: SchedTask): boolean {
		return true;
	}
	check(n: NodeInfo): boolean {
		return n.node.availability === "active";
	}
	explain(count: number): string {
		return `${nodes(count)} not available for new tasks`;
	}
}

/** The task's reservations fit in what the node has left after the reservations of its tasks. */
export class ResourceFilter implements Filter {
	readonly name = "resources";
	#want: SchedResources = { nanoCpus: 0, memoryBytes: 0 };
	setTask(task: SchedTask): boolean {
		this.#want = taskReservations(task);
		return this.#want.nanoCpus > 0 || this.#want.memoryBytes > 0;
	}
	check(n: NodeInfo): boolean {
		return this.#want.nanoCpus <= n.available.nanoCpus && this.#want.memoryBytes <= n.available.memoryBytes;
	}
	explain(count: number): string {
		return `insufficient resources on ${nodes(count)}`;
	}
}

/** The node's os/arch/variant is one the image has (a task with no platform list fits anywhere). */
export class PlatformFilter implements Filter {
	readonly name = "platform";
	#platforms: NormalPlatform[] = [];
	setTask(task: SchedTask): boolean {
		this.#platforms = (task.spec.placement?.platforms ?? []).map(normalizePlatform);
		return this.#platforms.length > 0;
	}
	check(n: NodeInfo): boolean {
		for (const p of this.#platforms) if (platformSatisfies(p, n.platform)) return true;
		return false;
	}
	explain(count: number): string {
		const names = [...new Set(this.#platforms.map(formatPlatform))].join(" or ");
		return `${nodes(count)} ${count === 1 ? "lacks" : "lack"} platform ${names}`;
	}
}

// Constraint lists parse once per spec (tasks of a service share them; the list is the cache key).
const parsed = new WeakMap<readonly string[], Constraint[] | Error>();

/** The node satisfies every `--constraint` of the task. */
export class ConstraintFilter implements Filter {
	readonly name = "constraints";
	#constraints: Constraint[] = [];
	#error: Error | undefined;
	setTask(task: SchedTask): boolean {
		const list = task.spec.placement?.constraints;
		if (!list || list.length === 0) return false;
		let c = parsed.get(list);
		if (!c) {
			try {
				c = parseConstraints(list);
			} catch (err) {
				c = err as Error;
			}
			parsed.set(list, c);
		}
		// Validated at create; a bad one slipping through refuses every node instead of being ignored.
		this.#error = c instanceof Error ? c : undefined;
		this.#constraints = c instanceof Error ? [] : c;
		return true;
	}
	check(n: NodeInfo): boolean {
		return this.#error === undefined && nodeMatches(this.#constraints, n.node);
	}
	explain(count: number): string {
		if (this.#error) return `${this.#error.message} (${nodes(count)})`;
		return `scheduling constraints not satisfied on ${nodes(count)}`;
	}
}

/** No task on the node already publishes one of the task's host-mode ports. */
export class HostPortFilter implements Filter {
	readonly name = "host-ports";
	#ports: string[] = [];
	setTask(task: SchedTask): boolean {
		this.#ports = (task.spec.hostPorts ?? []).filter((p: HostPort) => p.port > 0).map(hostPortKey);
		return this.#ports.length > 0;
	}
	check(n: NodeInfo): boolean {
		for (const p of this.#ports) if (n.usedHostPorts.has(p)) return false;
		return true;
	}
	explain(count: number): string {
		return `host-mode port already in use on ${nodes(count)}`;
	}
}

/** `--replicas-max-per-node`: fewer active tasks of the service on the node than the limit. */
export class MaxReplicasFilter implements Filter {
	readonly name = "max-replicas";
	#serviceId = "";
	#max = 0;
	setTask(task: SchedTask): boolean {
		this.#serviceId = task.serviceId;
		this.#max = task.spec.placement?.maxReplicasPerNode ?? 0;
		return this.#max > 0;
	}
	check(n: NodeInfo): boolean {
		return n.serviceTasks(this.#serviceId) < this.#max;
	}
	explain(_count?: number): string {
		return "max replicas per node limit exceed";
	}
}

/** The filters in the order a node meets them (the first one refusing it is the one counted). */
export function defaultFilters(): Filter[] {
	return [
		new ReadyFilter(),
		new AvailabilityFilter(),
		new ResourceFilter(),
		new PlatformFilter(),
		new ConstraintFilter(),
		new HostPortFilter(),
		new MaxReplicasFilter(),
	];
}
