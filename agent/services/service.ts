// A service as the store keeps it: the spec the user gave, the one before it (for rollback), what
// the allocator gave it, and a rolling update's progress (so a new leader resumes it).
import type { PortSpec, ServiceSpec } from "./spec.ts";

export type UpdateState =
	| "updating"
	| "paused"
	| "completed"
	| "rollback_started"
	| "rollback_paused"
	| "rollback_completed";

export interface UpdateStatus {
	state: UpdateState;
	startedAt?: string;
	completedAt?: string;
	message?: string;
	/** Tasks of this update (or rollback) counted as failed so far: a new leader counts on from here. */
	failedTasks?: string[];
}

export interface ServiceEndpoint {
	/** One virtual IP per network the service is on (CIDR form). */
	vips: Array<{ networkId: string; addr: string }>;
	/** The spec's ports with every published port allocated. */
	ports: PortSpec[];
}

export interface Service {
	id: string;
	spec: ServiceSpec;
	/** Bumped on every spec change; a task records the one it was made from. */
	specVersion: number;
	previousSpec?: ServiceSpec;
	/** previousSpec's version: a rollback restores it, so the tasks already on it stay. */
	previousSpecVersion?: number;
	updateStatus?: UpdateStatus;
	endpoint?: ServiceEndpoint;
	createdAt: string;
	updatedAt: string;
}
