// The scheduler's own input shapes: structural, so the store's Node and Task objects map onto them
// without the scheduler importing the store (and tests and benches build them directly).

export type Availability = "active" | "pause" | "drain";

export interface SchedPlatform {
	os: string;
	architecture: string;
	variant?: string;
}

export interface SchedResources {
	nanoCpus: number;
	memoryBytes: number;
}

export interface SchedNode {
	id: string;
	hostname: string;
	/** "manager" or "worker" (matched case-insensitively by `node.role`). */
	role: string;
	availability: Availability;
	/** The node is up (dispatcher heartbeats): a Down node gets no new task. */
	ready: boolean;
	labels: Record<string, string>;
	/** Labels the node's agent reports about itself (`engine.labels.K`). */
	engineLabels?: Record<string, string>;
	platform: SchedPlatform;
	resources: SchedResources;
}

export type HostPortProtocol = "tcp" | "udp" | "sctp";

export interface HostPort {
	protocol: HostPortProtocol;
	port: number;
}

export interface SpreadPreference {
	/** `node.labels.K` or `engine.labels.K`. */
	spread: string;
}

export interface SchedPlacement {
	constraints?: string[];
	preferences?: SpreadPreference[];
	/** 0 or absent: no limit. */
	maxReplicasPerNode?: number;
	/** Platforms the image has; empty or absent: it runs anywhere. */
	platforms?: SchedPlatform[];
}

export interface SchedTaskSpec {
	placement?: SchedPlacement;
	resources?: { reservations?: Partial<SchedResources> };
	/** Published ports in host mode (the node's own port, so one task per node and port). */
	hostPorts?: HostPort[];
}

export interface SchedTask {
	id: string;
	serviceId: string;
	spec: SchedTaskSpec;
}
