// A task: one slot of a service on one node. Managers write its desired state and placement; only
// the worker that runs it writes its observed status (swarmkit's Task, with its state ladder).
import type { TaskTemplate } from "./spec.ts";

/** Observed states in order; a task only moves forward (swarmkit's TaskState). */
export const TASK_STATES = [
	"new",
	"pending",
	"assigned",
	"accepted",
	"preparing",
	"ready",
	"starting",
	"running",
	"complete",
	"shutdown",
	"failed",
	"rejected",
	"remove",
	"orphaned",
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** What managers may ask of a task. */
export type DesiredState = "ready" | "running" | "complete" | "shutdown" | "remove";

export const stateRank = (s: TaskState): number => TASK_STATES.indexOf(s);

/** A state the task never leaves (its container is gone or done). */
export const isTerminal = (s: TaskState): boolean => stateRank(s) >= stateRank("complete");

export interface TaskStatus {
	state: TaskState;
	message: string;
	/** Why it failed or is pending (the scheduler's explanation, an exit code, an error). */
	err?: string;
	timestamp: string;
	containerId?: string;
	exitCode?: number;
	health?: "starting" | "healthy" | "unhealthy";
}

export interface NetworkAttachment {
	networkId: string;
	/** CIDR addresses on that network, e.g. 198.19.1.5/24. */
	addresses: string[];
	aliases: string[];
}

export interface Task {
	id: string;
	serviceId: string;
	serviceName: string;
	/** Replicated services: the slot (1..replicas); global: none (one per node). */
	slot?: number;
	/** Set by the scheduler. */
	nodeId?: string;
	/** The service version this task was made from. */
	specVersion: number;
	spec: TaskTemplate;
	/** The image pinned for this task (digest reference), once resolved. */
	image: string;
	desiredState: DesiredState;
	status: TaskStatus;
	networks: NetworkAttachment[];
	createdAt: string;
}

/** The container name of a task, as Swarm's: SERVICE.SLOT.TASKID (global: SERVICE.NODEID.TASKID). */
export const containerName = (t: Pick<Task, "serviceName" | "slot" | "nodeId" | "id">): string =>
	`${t.serviceName}.${t.slot ?? t.nodeId ?? "0"}.${t.id}`;
