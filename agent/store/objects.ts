// The objects the cluster store holds: one TypeScript type and one validator per table, side by side.
// The FSM runs the validator on every create and update, so a malformed value is refused the same
// way on every manager (InvalidObjectError naming the field) and readers get the type, no casts.
import {
	arr,
	bool,
	type Check,
	fail,
	failAt,
	ISO_TIME,
	int,
	obj,
	oneOf,
	opt,
	str,
	strMap,
	validator,
} from "./schema.ts";

// ---- shared pieces ----

export interface Platform {
	os: string;
	architecture: string;
	variant?: string;
}

export interface Resources {
	/** CPU in units of 1e-9 CPUs (docker's NanoCPUs). */
	nanoCpus: number;
	memoryBytes: number;
}

const ID = str({ max: 128 });
const NAME = str({
	max: 63,
	re: /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
	hint: "letters, digits, '_', '.' or '-', starting with a letter or digit",
});
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const ADDR = str({ max: 64, re: IPV4, hint: "an IPv4 address" });
const CIDR = str({
	max: 64,
	re: /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/,
	hint: "an IPv4 CIDR like 10.0.1.0/24",
});
const PLATFORM: Check = obj({
	os: str({ max: 32 }),
	architecture: str({ max: 32 }),
	variant: opt(str({ max: 32 })),
});
const RESOURCES: Check = obj({ nanoCpus: int(0), memoryBytes: int(0) });
const STRINGS = arr(str({ min: 0 }), 1024);

// ---- nodes ----

export const NODE_ROLES = ["manager", "worker"] as const;
export const NODE_AVAILABILITIES = ["active", "pause", "drain"] as const;
export const NODE_STATES = ["unknown", "down", "ready", "disconnected"] as const;

/** What the dispatcher and membership observe about a node (Ready/Down), not what it was told. */
export interface NodeStatus {
	state: (typeof NODE_STATES)[number];
	message?: string;
	timestamp: string;
}

/** A cluster member, written when it joins; its id is its libp2p peer id (the allow-list key). */
export interface Node {
	id: string;
	hostname: string;
	/** "ip:port" it is reached at. */
	addr: string;
	role: (typeof NODE_ROLES)[number];
	availability: (typeof NODE_AVAILABILITIES)[number];
	labels: Record<string, string>;
	platform: Platform;
	resources: Resources;
	engineVersion: string;
	createdAt: string;
	status?: NodeStatus;
}

export const validateNode = validator<Node>(
	"node",
	obj({
		id: ID,
		hostname: str({ max: 253 }),
		addr: str({ max: 64, re: /^[^\s]+:\d{1,5}$/, hint: '"ip:port"' }),
		role: oneOf(NODE_ROLES),
		availability: oneOf(NODE_AVAILABILITIES),
		labels: strMap(),
		platform: PLATFORM,
		resources: RESOURCES,
		engineVersion: str({ max: 64 }),
		createdAt: ISO_TIME,
		status: opt(obj({ state: oneOf(NODE_STATES), message: opt(str({ min: 0 })), timestamp: ISO_TIME })),
	}),
);

// ---- services ----

export const SERVICE_MODES = ["replicated", "global", "replicated-job", "global-job"] as const;
export type ServiceMode = (typeof SERVICE_MODES)[number];

export interface RestartPolicy {
	condition: "none" | "on-failure" | "any";
	delayMs: number;
	/** 0 = no limit. */
	maxAttempts: number;
	/** 0 = attempts count over the task's whole life. */
	windowMs: number;
}

export interface Mount {
	type: "bind" | "volume" | "tmpfs";
	source?: string;
	target: string;
	readOnly?: boolean;
}

export interface HealthCheck {
	/** Docker's form: ["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"]. */
	test: string[];
	intervalMs?: number;
	timeoutMs?: number;
	retries?: number;
	startPeriodMs?: number;
}

export interface Placement {
	/** "node.labels.zone==a", "node.role!=manager", ... (parsed by the scheduler). */
	constraints?: string[];
	preferences?: Array<{ spread: string }>;
	/** --replicas-max-per-node; 0 or absent = no limit. */
	maxReplicas?: number;
	/** Platforms the image runs on (from its index at create time); empty = any. */
	platforms?: Platform[];
}

/** What every task of a service runs: copied into each task when it is created. */
export interface TaskSpec {
	image: string;
	command?: string[];
	args?: string[];
	env?: string[];
	/** Container labels (--container-label). */
	labels?: Record<string, string>;
	user?: string;
	workdir?: string;
	hostname?: string;
	mounts?: Mount[];
	readOnly?: boolean;
	capAdd?: string[];
	capDrop?: string[];
	stopSignal?: string;
	stopGracePeriodMs?: number;
	healthcheck?: HealthCheck;
	/** Absent: docker's default (condition any, 5 s delay, no attempt limit). */
	restart?: RestartPolicy;
	resources?: { reservations?: Resources; limits?: Resources };
	placement?: Placement;
	/** Overlay networks by id, with extra DNS aliases. */
	networks?: Array<{ target: string; aliases?: string[] }>;
}

export interface PortConfig {
	protocol: "tcp" | "udp";
	targetPort: number;
	/** Absent in a spec: the allocator picks one from 30000-32767 (ingress mode). */
	publishedPort?: number;
	publishMode: "ingress" | "host";
}

export interface UpdateConfig {
	parallelism: number;
	delayMs: number;
	failureAction: "pause" | "continue" | "rollback";
	monitorMs: number;
	maxFailureRatio: number;
	order: "stop-first" | "start-first";
}

export interface ServiceSpec {
	name: string;
	labels: Record<string, string>;
	mode: ServiceMode;
	/** replicated: the number of slots; replicated-job: how many run at once (with maxConcurrent). */
	replicas?: number;
	/** Jobs: tasks running at once. */
	maxConcurrent?: number;
	/** replicated-job: completions wanted. */
	totalCompletions?: number;
	task: TaskSpec;
	endpoint?: { ports: PortConfig[] };
	update?: UpdateConfig;
	rollback?: UpdateConfig;
}

/** A rolling update's progress, kept in the service record so a new leader resumes it. */
export interface UpdateStatus {
	state: "updating" | "paused" | "completed" | "rollback_started" | "rollback_paused" | "rollback_completed";
	startedAt?: string;
	completedAt?: string;
	message?: string;
}

export interface Service {
	id: string;
	spec: ServiceSpec;
	/** Bumped on every spec change; a task records the one it was made from. */
	specVersion: number;
	previousSpec?: ServiceSpec;
	updateStatus?: UpdateStatus;
	/** What the allocator gave it: a VIP per network and the published ports. */
	endpoint?: { vips: Array<{ networkId: string; addr: string }>; ports: PortConfig[] };
	createdAt: string;
	updatedAt: string;
}

const MS = int(0, 365 * 24 * 3600 * 1000);
const PORT: Check = obj({
	protocol: oneOf(["tcp", "udp"]),
	targetPort: int(1, 65535),
	publishedPort: opt(int(1, 65535)),
	publishMode: oneOf(["ingress", "host"]),
});
const UPDATE: Check = obj({
	parallelism: int(0, 1_000_000),
	delayMs: MS,
	failureAction: oneOf(["pause", "continue", "rollback"]),
	monitorMs: MS,
	maxFailureRatio: (v) => {
		if (typeof v !== "number" || !(v >= 0 && v <= 1)) fail("must be a number from 0 to 1");
	},
	order: oneOf(["stop-first", "start-first"]),
});
const TASK_SPEC: Check = obj({
	image: str({ max: 512 }),
	command: opt(STRINGS),
	args: opt(STRINGS),
	env: opt(arr(str({ re: /^[^=]+=/s, hint: "KEY=VALUE" }), 4096)),
	labels: opt(strMap()),
	user: opt(str({ max: 256 })),
	workdir: opt(str({ max: 4096, re: /^\//, hint: "an absolute path" })),
	hostname: opt(str({ max: 253 })),
	mounts: opt(
		arr(
			obj({
				type: oneOf(["bind", "volume", "tmpfs"]),
				source: opt(str()),
				target: str({ re: /^\//, hint: "an absolute path" }),
				readOnly: opt(bool),
			}),
			256,
		),
	),
	readOnly: opt(bool),
	capAdd: opt(arr(str({ max: 64 }), 64)),
	capDrop: opt(arr(str({ max: 64 }), 64)),
	stopSignal: opt(str({ max: 16 })),
	stopGracePeriodMs: opt(MS),
	healthcheck: opt(
		obj({
			test: arr(str({ min: 0 }), 256),
			intervalMs: opt(MS),
			timeoutMs: opt(MS),
			retries: opt(int(0, 1_000_000)),
			startPeriodMs: opt(MS),
		}),
	),
	restart: opt(
		obj({ condition: oneOf(["none", "on-failure", "any"]), delayMs: MS, maxAttempts: int(0), windowMs: MS }),
	),
	resources: opt(obj({ reservations: opt(RESOURCES), limits: opt(RESOURCES) })),
	placement: opt(
		obj({
			constraints: opt(arr(str({ max: 1024 }), 256)),
			preferences: opt(arr(obj({ spread: str({ max: 256 }) }), 16)),
			maxReplicas: opt(int(0)),
			platforms: opt(arr(PLATFORM, 64)),
		}),
	),
	networks: opt(arr(obj({ target: ID, aliases: opt(arr(str({ max: 253 }), 64)) }), 64)),
});
const SERVICE_SPEC: Check = obj(
	{
		name: NAME,
		labels: strMap(),
		mode: oneOf(SERVICE_MODES),
		replicas: opt(int(0, 1_000_000)),
		maxConcurrent: opt(int(1, 1_000_000)),
		totalCompletions: opt(int(0, 1_000_000_000)),
		task: TASK_SPEC,
		endpoint: opt(obj({ ports: arr(PORT, 1024) })),
		update: opt(UPDATE),
		rollback: opt(UPDATE),
	},
	(s) => {
		const replicated = s.mode === "replicated";
		if (replicated && s.replicas === undefined) failAt("replicas", "is required for a replicated service");
		if ((s.mode === "global" || s.mode === "global-job") && s.replicas !== undefined)
			failAt("replicas", `must be absent for a ${s.mode} service`);
		if (!String(s.mode).endsWith("job")) {
			if (s.maxConcurrent !== undefined) failAt("maxConcurrent", "is only for jobs");
			if (s.totalCompletions !== undefined) failAt("totalCompletions", "is only for jobs");
		}
	},
);

export const validateServiceSpec = validator<ServiceSpec>("service spec", SERVICE_SPEC);

export const validateService = validator<Service>(
	"service",
	obj({
		id: ID,
		spec: SERVICE_SPEC,
		specVersion: int(0),
		previousSpec: opt(SERVICE_SPEC),
		updateStatus: opt(
			obj({
				state: oneOf(["updating", "paused", "completed", "rollback_started", "rollback_paused", "rollback_completed"]),
				startedAt: opt(ISO_TIME),
				completedAt: opt(ISO_TIME),
				message: opt(str({ min: 0 })),
			}),
		),
		endpoint: opt(obj({ vips: arr(obj({ networkId: ID, addr: CIDR }), 64), ports: arr(PORT, 1024) })),
		createdAt: ISO_TIME,
		updatedAt: ISO_TIME,
	}),
);

// ---- tasks ----

/** swarmkit's TaskState, in lifecycle order. */
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

/** Observed state: written by the worker that runs the task (the scheduler writes a pending reason). */
export interface TaskStatus {
	state: TaskState;
	message: string;
	/** Why it failed or is pending ("no suitable node (...)"). */
	err?: string;
	timestamp: string;
	containerId?: string;
	exitCode?: number;
}

export interface NetworkAttachment {
	networkId: string;
	/** The task's addresses on it, CIDR form ("10.0.1.5/24"). */
	addresses: string[];
}

export interface Task {
	id: string;
	serviceId: string;
	/** Replicated services: the slot (1..replicas) this task fills. */
	slot?: number;
	/** The node it runs on: set at creation for global services, by the scheduler otherwise. */
	nodeId?: string;
	/** Desired state: written only by the manager loops. */
	desiredState: TaskState;
	status: TaskStatus;
	networks: NetworkAttachment[];
	/** The service's task spec when this task was made (so an update replaces it, never mutates it). */
	spec: TaskSpec;
	specVersion: number;
	/** Resolved at create time, so every replica runs the same bits. */
	imageDigest?: string;
	createdAt: string;
}

export const validateTask = validator<Task>(
	"task",
	obj(
		{
			id: ID,
			serviceId: ID,
			slot: opt(int(1, 1_000_000)),
			nodeId: opt(ID),
			desiredState: oneOf(TASK_STATES),
			status: obj({
				state: oneOf(TASK_STATES),
				message: str({ min: 0 }),
				err: opt(str({ min: 0 })),
				timestamp: ISO_TIME,
				containerId: opt(str({ max: 128 })),
				exitCode: opt(int(-(2 ** 31), 2 ** 31 - 1)),
			}),
			networks: arr(obj({ networkId: ID, addresses: arr(CIDR, 16) }), 64),
			spec: TASK_SPEC,
			specVersion: int(0),
			imageDigest: opt(str({ max: 80, re: /^sha256:[0-9a-f]{64}$/, hint: "sha256:<64 hex digits>" })),
			createdAt: ISO_TIME,
		},
		(t) => {
			if (t.slot === undefined && t.nodeId === undefined)
				failAt("slot", "or nodeId is required (a replicated task has a slot, a global one its node)");
		},
	),
);

// ---- networks ----

/** An overlay network as the leader allocated it (agent/manager/networks.ts). */
export interface Network {
	id: string;
	name: string;
	driver: "overlay";
	subnet: string;
	gateway: string;
	internal: boolean;
	attachable: boolean;
	ingress: boolean;
	labels: Record<string, string>;
	options: Record<string, string>;
	vni: number;
	createdAt: string;
}

export const validateNetwork = validator<Network>(
	"network",
	obj({
		id: ID,
		name: NAME,
		driver: oneOf(["overlay"]),
		subnet: CIDR,
		gateway: ADDR,
		internal: bool,
		attachable: bool,
		ingress: bool,
		labels: strMap(),
		options: strMap(),
		vni: int(1, 2 ** 24 - 1),
		createdAt: ISO_TIME,
	}),
);

// ---- the cluster record ----

export const CLUSTER_ID = "cluster";

/** The one record of the `cluster` table (id "cluster"). */
export interface Cluster {
	id: typeof CLUSTER_ID;
	clusterId: string;
	/** Where networks without --subnet get theirs (tsswarm init --default-addr-pool). */
	addrPools: string[];
	subnetSize: number;
	nextVni: number;
	createdAt: string;
}

export const validateCluster = validator<Cluster>(
	"cluster",
	obj({
		id: oneOf([CLUSTER_ID]),
		clusterId: ID,
		addrPools: arr(CIDR, 64),
		subnetSize: int(1, 32),
		nextVni: int(1, 2 ** 24),
		createdAt: ISO_TIME,
	}),
);

// ---- secrets and configs (placeholders until they are built: name and labels only) ----

export interface Secret {
	id: string;
	name: string;
	labels: Record<string, string>;
	createdAt: string;
}

export interface Config {
	id: string;
	name: string;
	labels: Record<string, string>;
	createdAt: string;
}

const NAMED_PLACEHOLDER = obj({ id: ID, name: NAME, labels: strMap(), createdAt: ISO_TIME });
export const validateSecret = validator<Secret>("secret", NAMED_PLACEHOLDER);
export const validateConfigObject = validator<Config>("config", NAMED_PLACEHOLDER);
