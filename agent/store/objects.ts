// The objects the cluster store holds: one type and one validator per table (specs and tasks are
// agent/services' shapes, node records agent/nodes'; their store checks are here). The FSM runs
// them on every create and update: a bad value is refused alike on every manager, naming the field.
import { SEAL_OVERHEAD } from "../keyring/index.ts";
import type { NodeRecord } from "../nodes/index.ts";
import {
	type DesiredState,
	InvalidServiceSpecError,
	type Service,
	type ServiceSpec,
	TASK_STATES,
	type Task,
	validateServiceSpec,
	validateTaskTemplate,
} from "../services/index.ts";
import {
	arr,
	bool,
	bytes,
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

export type { NodeRecord, Service, ServiceSpec, Task };

// ---- shared pieces ----

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

// ---- nodes (the record agent/nodes writes at join, plus what heartbeats observe) ----

export const NODE_STATES = ["unknown", "down", "ready", "disconnected"] as const;

/** What the dispatcher and membership observe about a node (Ready/Down), not what it was told. */
export interface NodeStatus {
	state: (typeof NODE_STATES)[number];
	message?: string;
	timestamp: string;
}

/** A cluster member; its id is its libp2p peer id (the allow-list key). */
export interface Node extends NodeRecord {
	status?: NodeStatus;
}

export const validateNode = validator<Node>(
	"node",
	obj({
		id: ID,
		hostname: str({ max: 253 }),
		addr: str({ max: 64, re: /^[^\s]+:\d{1,5}$/, hint: '"ip:port"' }),
		role: oneOf(["manager", "worker"]),
		desiredRole: opt(oneOf(["auto", "manager", "worker"])),
		roleReason: opt(str({ min: 0, max: 512 })),
		availability: oneOf(["active", "pause", "drain"]),
		labels: strMap(),
		platform: PLATFORM,
		resources: RESOURCES,
		engineVersion: str({ max: 64 }),
		createdAt: ISO_TIME,
		status: opt(obj({ state: oneOf(NODE_STATES), message: opt(str({ min: 0 })), timestamp: ISO_TIME })),
	}),
);

// ---- services (the spec's type and validator live in agent/services) ----

/**
 * agent/services' validateServiceSpec as a check: it throws InvalidServiceSpecError naming the
 * field; here that becomes the field under this object. `template` checks a task's copy of
 * `spec.task` through the same validator, so there is one definition of a valid template.
 */
const SPEC_PREFIX = "invalid service spec: ";
const serviceSpecCheck =
	(template: boolean): Check =>
	(v) => {
		try {
			if (template) validateTaskTemplate(v);
			else validateServiceSpec(v);
		} catch (e) {
			if (!(e instanceof InvalidServiceSpecError)) throw e;
			const why = e.message.slice(SPEC_PREFIX.length + e.field.length + 1);
			const field = e.field === "spec" ? "" : e.field;
			if (!template) failAt(field, why);
			if (field === "task") fail(why);
			failAt(field.replace(/^task\./, ""), why);
		}
	};
const SERVICE_SPEC = serviceSpecCheck(false);
const TASK_TEMPLATE = serviceSpecCheck(true);

const PORT: Check = obj({
	protocol: oneOf(["tcp", "udp"]),
	targetPort: int(1, 65535),
	publishedPort: opt(int(1, 65535)),
	publishMode: oneOf(["ingress", "host"]),
});

export const validateService = validator<Service>(
	"service",
	obj({
		id: ID,
		spec: SERVICE_SPEC,
		specVersion: int(0),
		previousSpec: opt(SERVICE_SPEC),
		previousSpecVersion: opt(int(0)),
		updateStatus: opt(
			obj({
				state: oneOf(["updating", "paused", "completed", "rollback_started", "rollback_paused", "rollback_completed"]),
				startedAt: opt(ISO_TIME),
				completedAt: opt(ISO_TIME),
				message: opt(str({ min: 0 })),
				failedTasks: opt(arr(ID, 100_000)),
			}),
		),
		endpoint: opt(obj({ vips: arr(obj({ networkId: ID, addr: CIDR }), 64), ports: arr(PORT, 1024) })),
		createdAt: ISO_TIME,
		updatedAt: ISO_TIME,
	}),
);

// ---- tasks (the type lives in agent/services; this is its store check) ----

export const DESIRED_STATES: readonly DesiredState[] = ["ready", "running", "complete", "shutdown", "remove"];

export const validateTask = validator<Task>(
	"task",
	obj(
		{
			id: ID,
			serviceId: ID,
			serviceName: NAME,
			slot: opt(int(1, 1_000_000)),
			nodeId: opt(ID),
			specVersion: int(0),
			spec: TASK_TEMPLATE,
			image: str({ max: 512 }),
			desiredState: oneOf(DESIRED_STATES),
			status: obj({
				state: oneOf(TASK_STATES),
				message: str({ min: 0 }),
				err: opt(str({ min: 0 })),
				timestamp: ISO_TIME,
				containerId: opt(str({ max: 128 })),
				exitCode: opt(int(-(2 ** 31), 2 ** 31 - 1)),
				health: opt(oneOf(["starting", "healthy", "unhealthy"])),
			}),
			networks: arr(obj({ networkId: ID, addresses: arr(CIDR, 16), aliases: arr(str({ max: 253 }), 64) }), 64),
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
	/** Autopilot's settings (`tsswarm swarm update`); absent fields take agent/manager/autopilot's defaults. */
	autopilot?: {
		voters?: number;
		deadServerThresholdMs?: number;
		stabilizationMs?: number;
		minQuorum?: number;
	};
	/** Autolock on: the unlock key (base64), sealed with the cluster secret; every manager seals its key file with it. */
	autolock?: { sealedKey: string; since: string };
	/** The join protocol's key material, sealed: any manager holding the cluster secret admits nodes. */
	joinKeys?: SealedJoinKeys;
	/**
	 * The last `init --force-new-cluster`: when, by which server, and the servers it left out. The
	 * leader tells those it sees alive that they are out (agent/manager/fence.ts).
	 */
	recovery?: { at: string; by: string; removed: string[] };
}

/**
 * The cluster's join material, each field sealed (agent/keyring) with the managers' cluster secret
 * and an associated data naming the field and the cluster (agent/manager/joinkeys.ts): the
 * Ed25519 signing key (libp2p protobuf) and the manager and worker join secrets.
 */
export interface SealedJoinKeys {
	signingKey: Uint8Array;
	manager: Uint8Array;
	worker: Uint8Array;
}

/** A sealed value: version byte 1, nonce, ciphertext, tag (agent/keyring's format), bounded. */
const SEALED: Check = (v) => {
	if (!(v instanceof Uint8Array)) fail(`must be sealed bytes (got ${v === null ? "null" : typeof v})`);
	const b = v as Uint8Array;
	if (b.length < SEALED_MIN || b.length > 4096) fail(`must be ${SEALED_MIN} to 4096 sealed bytes (got ${b.length})`);
	if (b[0] !== 1) fail(`must be sealed with seal version 1 (got version ${b[0]})`);
};
/** Version + nonce + tag + at least one byte of ciphertext. */
const SEALED_MIN = SEAL_OVERHEAD + 1;

export const validateCluster = validator<Cluster>(
	"cluster",
	obj({
		id: oneOf([CLUSTER_ID]),
		clusterId: ID,
		addrPools: arr(CIDR, 64),
		subnetSize: int(1, 32),
		nextVni: int(1, 2 ** 24),
		createdAt: ISO_TIME,
		autopilot: opt(
			obj({
				voters: opt(int(1, 9)),
				deadServerThresholdMs: opt(int(1000, 30 * 24 * 3_600_000)),
				stabilizationMs: opt(int(0, 3_600_000)),
				minQuorum: opt(int(1, 9)),
			}),
		),
		autolock: opt(obj({ sealedKey: str({ min: 1, max: 256, re: /^[A-Za-z0-9+/]+=*$/ }), since: ISO_TIME })),
		joinKeys: opt(obj({ signingKey: SEALED, manager: SEALED, worker: SEALED })),
		recovery: opt(obj({ at: ISO_TIME, by: ID, removed: arr(ID, 64) })),
	}),
);

// ---- secrets and configs ----

/** Swarm's bound on a secret's or config's data. */
export const MAX_FILE_DATA = 500 * 1024;
/** Data versions a record keeps: the current one and the ones tasks or previous specs still use. */
export const MAX_DATA_VERSIONS = 16;

/** One version of a secret's data, sealed with the managers' cluster secret (aad `secret:ID:VERSION`). */
export interface SecretData {
	version: number;
	sealed: Uint8Array;
	/** Bytes of the data in the clear. */
	size: number;
	createdAt: string;
}

/** A secret: its data only ever sealed here; `version` is the current data version. */
export interface Secret {
	id: string;
	name: string;
	labels: Record<string, string>;
	version: number;
	versions: SecretData[];
	createdAt: string;
	updatedAt: string;
}

/** One version of a config's data (configs are not secret: kept in the clear). */
export interface ConfigData {
	version: number;
	data: Uint8Array;
	size: number;
	createdAt: string;
}

export interface Config {
	id: string;
	name: string;
	labels: Record<string, string>;
	version: number;
	versions: ConfigData[];
	createdAt: string;
	updatedAt: string;
}

/** docker's secret and config names: 1-64 letters, digits, '_', '.' or '-', starting alphanumeric. */
export const FILE_OBJECT_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

const fileObject = (dataField: "sealed" | "data", max: number): Check =>
	obj(
		{
			id: ID,
			name: str({
				max: 64,
				re: FILE_OBJECT_NAME,
				hint: "letters, digits, '_', '.' or '-', starting with a letter or digit",
			}),
			labels: strMap(),
			version: int(1),
			versions: arr(
				obj({ version: int(1), [dataField]: bytes(max), size: int(0, MAX_FILE_DATA), createdAt: ISO_TIME }),
				MAX_DATA_VERSIONS,
			),
			createdAt: ISO_TIME,
			updatedAt: ISO_TIME,
		},
		(v) => {
			const versions = v.versions as Array<{ version: number }>;
			if (!versions.some((x) => x.version === v.version)) failAt("versions", `holds no data for version ${v.version}`);
			if (new Set(versions.map((x) => x.version)).size !== versions.length) failAt("versions", "holds a version twice");
		},
	);
export const validateSecret = validator<Secret>("secret", fileObject("sealed", MAX_FILE_DATA + SEAL_OVERHEAD));
export const validateConfigObject = validator<Config>("config", fileObject("data", MAX_FILE_DATA));
