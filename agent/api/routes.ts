// The local API's routes, against AgentApi: the few things the agent does for its CLI. Each route
// is typed by its entry in ApiRoutes (types.ts) and checks its body's shape here (unknown fields
// refused); what the values mean is checked where they are used (the manager, the join code).

import { parseCidr } from "../../overlay-net/ipam/index.ts";
import { NotInClusterError, UsageError } from "../errors.ts";
import type { InitOptions, Manager } from "../manager/index.ts";
import type { ClusterStore } from "../store/index.ts";
import { check as c } from "../store/index.ts";
import { type CompiledRoute, routes } from "./route.ts";
import { untypedRoutes } from "./server.ts";
import type {
	InfoResponse,
	InitRequest,
	JoinTokenResponse,
	LeaveResponse,
	MemberState,
	NodeView,
	Platform,
	RecoverySummary,
	Role,
	SwarmUpdateResponse,
} from "./types.ts";

/** What the agent itself says about this node; the route adds what it derives (managers, leader, tasks). */
export type AgentInfo = Omit<InfoResponse, "managers" | "leader" | "tasksRunning">;

/** A node as the agent lists it: the directory's entry and membership's view. */
export interface AgentNode {
	id: string;
	addr: string;
	/** Membership's state (alive, suspect, dead, left) or "unknown". */
	state: string;
	role: Role;
	platform?: Platform;
	self: boolean;
	version?: string;
	/** Leader, Reachable, Unreachable (voters), Catching up (a non-voter) or "". */
	managerStatus: string;
	labels: Record<string, string>;
}

/** What the routes need of an agent (Agent implements it). */
export interface AgentApi {
	info(): AgentInfo;
	init(
		o: InitOptions,
	): Promise<AgentInfo & { tokens: { manager: string; worker: string }; advertise: string; unlockKey?: string }>;
	/** `tsswarm unlock`: open a locked manager's keys with the unlock key and start it. */
	unlock?(key: string): Promise<{ unlocked: boolean }>;
	/** Throws KeysLockedError while this manager is locked (every route but info, unlock and leave). */
	assertUnlocked?(): void;
	/**
	 * On a manager: resolves once its replica follows a leader and has applied all it committed
	 * (a restarted manager replays its log first); throws ReplicaNotReadyError after a deadline.
	 */
	replicaReady?(): Promise<void>;
	/** `swarm update --autolock=true|false`. */
	updateSwarm?(o: { autolock?: boolean }): Promise<SwarmUpdateResponse>;
	/** `unlock-key [--rotate]`: the key in force (null: autolock is off). */
	unlockKey?(rotate: boolean): Promise<{ unlockKey: string | null }>;
	join(token: string, addr: string): Promise<AgentInfo>;
	joinToken(role: Role, rotate: boolean): Promise<JoinTokenResponse>;
	/** Throws NotInClusterError outside a cluster. */
	nodes(): AgentNode[];
	removeNode(id: string, force: boolean): Promise<{ id: string }>;
	leave(force: boolean): Promise<LeaveResponse>;
	/** init --force-new-cluster: this manager's Raft configuration becomes itself alone. */
	forceNewCluster(): Promise<AgentInfo & { recovered: RecoverySummary }>;
	/** This node's manager; throws NotInClusterError / NotManagerError elsewhere. */
	managerOnly(): Pick<
		Manager,
		| "listNetworks"
		| "createNetwork"
		| "inspectNetwork"
		| "removeNetwork"
		| "createService"
		| "validateService"
		| "listServices"
		| "inspectService"
		| "serviceTasks"
		| "scaleService"
		| "removeService"
		| "updateService"
		| "rollbackService"
		| "nodeTasks"
		| "inspectNodes"
		| "updateNode"
		| "serviceLogs"
		| "events"
		| "updateAutopilot"
		| "autopilotSettings"
		| "createFileObject"
		| "listSecrets"
		| "listConfigs"
		| "inspectSecret"
		| "inspectConfig"
		| "updateSecret"
		| "updateConfig"
		| "removeFileObject"
	> & {
		store: Pick<ClusterStore, "list">;
	};
	/** Tasks running on this node: the worker's to provide (until then info says null). */
	tasksRunning?(): number;
}

const STATES = ["alive", "suspect", "dead", "left", "unknown"] as const satisfies readonly MemberState[];
const MANAGER_STATUS = ["", "Leader", "Reachable", "Unreachable", "Catching up"] as const;
const STRS = c.arr(c.str({ max: 64 }), 64);
const FORCE = c.obj({ force: c.opt(c.bool) });
const REF = c.obj({ ref: c.str({ max: 256 }) });
/** Base64 data of a secret or config: its size and alphabet are the manager's to check; never echoed. */
const DATA: c.Check = (v) => {
	if (typeof v !== "string") c.fail(`must be a base64 string (got ${typeof v})`);
	if ((v as string).length > 1 << 20) c.fail("is over 1 MB of base64 (the data may be at most 500 KB)");
};
const FILE_CREATE = c.obj({ name: c.str({ max: 256 }), data: DATA, labels: c.opt(c.strMap()) });
const FILE_UPDATE = c.obj({ ref: c.str({ max: 256 }), data: c.opt(DATA), labels: c.opt(c.strMap()) });
/** Any JSON object (a spec or an update is checked whole by the manager, naming the field). */
const OBJECT: c.Check = (v) => {
	if (!v || typeof v !== "object" || Array.isArray(v)) c.fail("must be an object");
};

/** What a locked manager still answers; everything else is 423 KeysLockedError. */
const WHILE_LOCKED = new Set(["GET /v1/info", "POST /v1/unlock", "POST /v1/leave"]);

/**
 * What is answered without a current replica: what needs none (info, init, join, unlock, leave),
 * the recovery that makes one, and node ls (the directory and membership: what an operator needs
 * in an outage).
 */
const WITHOUT_REPLICA = new Set([
	"GET /v1/info",
	"POST /v1/init",
	"POST /v1/force-new-cluster",
	"POST /v1/join",
	"POST /v1/unlock",
	"POST /v1/leave",
	"GET /v1/nodes",
]);

export function agentRoutes(a: AgentApi): CompiledRoute[] {
	return guardLocked(a, guardReplica(a, allRoutes(a)));
}

/** A restarted manager answered reads from a replica still replaying its log (empty lists): wait. */
function guardReplica(a: AgentApi, table: CompiledRoute[]): CompiledRoute[] {
	if (!a.replicaReady) return table;
	const ready = a.replicaReady.bind(a);
	return table.map((r) =>
		WITHOUT_REPLICA.has(r.key)
			? r
			: {
					...r,
					handler: async (req) => {
						await ready();
						return r.handler(req);
					},
				},
	);
}

function guardLocked(a: AgentApi, table: CompiledRoute[]): CompiledRoute[] {
	if (!a.assertUnlocked) return table;
	const assert = a.assertUnlocked.bind(a);
	return table.map((r) =>
		WHILE_LOCKED.has(r.key)
			? r
			: {
					...r,
					handler: (req) => {
						assert();
						return r.handler(req);
					},
				},
	);
}

function allRoutes(a: AgentApi): CompiledRoute[] {
	const route = routes();
	return [
		route("GET /v1/info", { handler: () => info(a) }),
		route("POST /v1/init", {
			body: c.obj({ addrPools: c.opt(STRS), subnetSize: c.opt(c.int(0, 128)), autolock: c.opt(c.bool) }),
			handler: async ({ body }) => ({ ...(await a.init(initOptions(body))), ...derived(a) }),
		}),
		route("POST /v1/force-new-cluster", {
			body: c.obj({}),
			handler: async () => ({ ...(await a.forceNewCluster()), ...derived(a) }),
		}),
		route("POST /v1/join", {
			body: c.obj({ token: c.str({ max: 256 }), addr: c.str({ max: 64 }) }),
			handler: async ({ body }) => ({ ...(await a.join(body.token, body.addr)), ...derived(a) }),
		}),
		route("POST /v1/join-token", {
			body: c.obj({ role: c.oneOf(["manager", "worker"]), rotate: c.opt(c.bool) }),
			handler: ({ body }) => a.joinToken(body.role, body.rotate ?? false),
		}),
		route("POST /v1/unlock", {
			body: c.obj({ key: c.str({ max: 256 }) }),
			handler: ({ body }) => need(a.unlock, "unlock").call(a, body.key),
		}),
		route("POST /v1/swarm/update", {
			body: c.obj({ autolock: c.opt(c.bool) }),
			handler: ({ body }) => need(a.updateSwarm, "swarm update").call(a, body),
		}),
		route("POST /v1/unlock-key", {
			body: c.obj({ rotate: c.opt(c.bool) }),
			handler: ({ body }) => need(a.unlockKey, "unlock-key").call(a, body.rotate ?? false),
		}),
		route("POST /v1/leave", { body: FORCE, handler: ({ body }) => a.leave(body.force ?? false) }),
		route("GET /v1/nodes", { handler: () => nodeViews(a) }),
		route("DELETE /v1/nodes/:id", {
			body: FORCE,
			handler: ({ params, body }) => a.removeNode(params.id, body.force ?? false),
		}),
		route("GET /v1/networks", { handler: () => a.managerOnly().listNetworks() }),
		route("POST /v1/networks", {
			body: c.obj({
				name: c.str({ max: 256 }),
				driver: c.opt(c.str({ max: 64 })),
				subnet: c.opt(c.str({ max: 64 })),
				gateway: c.opt(c.str({ max: 64 })),
				attachable: c.opt(c.bool),
				internal: c.opt(c.bool),
				ingress: c.opt(c.bool),
				options: c.opt(c.strMap()),
				labels: c.opt(c.strMap()),
			}),
			handler: ({ body }) => a.managerOnly().createNetwork({ ...body }),
		}),
		route("GET /v1/networks/:ref", { handler: ({ params }) => a.managerOnly().inspectNetwork(params.ref) }),
		route("DELETE /v1/networks/:ref", { handler: ({ params }) => a.managerOnly().removeNetwork(params.ref) }),
		route("POST /v1/services/create", {
			body: c.obj({ spec: OBJECT }),
			handler: ({ body }) => a.managerOnly().createService(body.spec),
		}),
		route("POST /v1/services/validate", {
			body: c.obj({ spec: OBJECT }),
			handler: ({ body }) => a.managerOnly().validateService(body.spec),
		}),
		route("GET /v1/services", { handler: () => a.managerOnly().listServices() }),
		route("POST /v1/services/inspect", {
			body: REF,
			handler: ({ body }) => a.managerOnly().inspectService(body.ref),
		}),
		route("POST /v1/services/ps", { body: REF, handler: ({ body }) => a.managerOnly().serviceTasks(body.ref) }),
		route("POST /v1/services/scale", {
			body: c.obj({ ref: c.str({ max: 256 }), replicas: c.int(0, 100_000) }),
			handler: ({ body }) => a.managerOnly().scaleService(body.ref, body.replicas),
		}),
		route("POST /v1/services/update", {
			body: c.obj({ ref: c.str({ max: 256 }), spec: OBJECT, version: c.opt(c.int(0)), force: c.opt(c.bool) }),
			handler: ({ body }) =>
				a.managerOnly().updateService(body.ref, { spec: body.spec, version: body.version, force: body.force }),
		}),
		route("POST /v1/services/rollback", {
			body: c.obj({ ref: c.str({ max: 256 }), version: c.opt(c.int(0)) }),
			handler: ({ body }) => a.managerOnly().rollbackService(body.ref, { version: body.version }),
		}),
		route("POST /v1/services/rm", { body: REF, handler: ({ body }) => a.managerOnly().removeService(body.ref) }),
		route("POST /v1/nodes/ps", {
			body: c.obj({ ref: c.opt(c.str({ max: 256 })), id: c.opt(c.str({ max: 256 })) }),
			handler: ({ body }) => a.managerOnly().nodeTasks(body.ref ?? body.id ?? ""),
		}),
		route("POST /v1/nodes/inspect", {
			body: c.obj({ refs: c.arr(c.str({ max: 256 }), 1024) }),
			handler: ({ body }) => a.managerOnly().inspectNodes(body.refs),
		}),
		route("POST /v1/nodes/update", {
			body: c.obj({ ref: c.str({ max: 256 }), update: OBJECT }),
			handler: ({ body }) => a.managerOnly().updateNode(body.ref, body.update),
		}),
		route("GET /v1/swarm/autopilot", { handler: () => a.managerOnly().autopilotSettings() }),
		route("POST /v1/swarm/autopilot", {
			body: c.obj({ autopilot: OBJECT }),
			handler: ({ body }) => a.managerOnly().updateAutopilot(body.autopilot),
		}),
		route("POST /v1/secrets/create", {
			body: FILE_CREATE,
			handler: async ({ body }) =>
				a.managerOnly().inspectSecret((await a.managerOnly().createFileObject("secret", { ...body })).id),
		}),
		route("GET /v1/secrets", { handler: () => a.managerOnly().listSecrets() }),
		route("POST /v1/secrets/inspect", { body: REF, handler: ({ body }) => a.managerOnly().inspectSecret(body.ref) }),
		route("POST /v1/secrets/update", {
			body: FILE_UPDATE,
			handler: ({ body }) => a.managerOnly().updateSecret({ ...body }),
		}),
		route("POST /v1/secrets/rm", {
			body: REF,
			handler: ({ body }) => a.managerOnly().removeFileObject("secret", body.ref),
		}),
		route("POST /v1/configs/create", {
			body: FILE_CREATE,
			handler: async ({ body }) =>
				a.managerOnly().inspectConfig((await a.managerOnly().createFileObject("config", { ...body })).id),
		}),
		route("GET /v1/configs", { handler: () => a.managerOnly().listConfigs() }),
		route("POST /v1/configs/inspect", { body: REF, handler: ({ body }) => a.managerOnly().inspectConfig(body.ref) }),
		route("POST /v1/configs/update", {
			body: FILE_UPDATE,
			handler: ({ body }) => a.managerOnly().updateConfig({ ...body }),
		}),
		route("POST /v1/configs/rm", {
			body: REF,
			handler: ({ body }) => a.managerOnly().removeFileObject("config", body.ref),
		}),
		// Streams whose queries are checked by their own parsers (parseLogsQuery, parseEventsQuery).
		...untypedRoutes({
			"POST /v1/services/logs": (b, { signal }) => a.managerOnly().serviceLogs(b, signal),
			"POST /v1/events": (b, { signal }) => a.managerOnly().events(b, signal),
		}),
	];
}

function need<F>(f: F | undefined, what: string): F {
	if (!f) throw new UsageError(`this agent does not support ${what}`);
	return f;
}

/** The cluster-wide part of info: managers and leader from the directory and Raft, tasks from the worker. */
function derived(a: AgentApi): Pick<InfoResponse, "managers" | "leader" | "tasksRunning"> {
	const i = a.info();
	let managers: number | null = null;
	try {
		if (i.clusterId !== null) managers = a.nodes().filter((n) => n.role === "manager").length;
	} catch (err) {
		// Between init/join writing the state and membership starting, there is no list yet.
		if (!(err instanceof NotInClusterError)) throw err;
	}
	return {
		managers,
		leader: i.raft?.leader ?? null,
		tasksRunning: a.tasksRunning?.() ?? null,
	};
}

const info = (a: AgentApi): InfoResponse => ({ ...a.info(), ...derived(a) });

/**
 * node ls: the agent's list (directory + membership) with what the store's records add on
 * managers (hostname, availability, engine version, platform); workers keep no records.
 */
function nodeViews(a: AgentApi): NodeView[] {
	const nodes = a.nodes();
	const records = new Map(
		a.info().role === "manager"
			? a
					.managerOnly()
					.store.list("nodes")
					.map((r) => [r.value.id, r.value])
			: [],
	);
	return nodes.map((n) => {
		const r = records.get(n.id);
		return {
			id: n.id,
			hostname: r?.hostname ?? n.addr.replace(/:\d+$/, ""),
			addr: n.addr,
			state: (STATES as readonly string[]).includes(n.state) ? (n.state as MemberState) : "unknown",
			role: n.role,
			availability: r?.availability ?? null,
			managerStatus: (MANAGER_STATUS as readonly string[]).includes(n.managerStatus)
				? (n.managerStatus as NodeView["managerStatus"])
				: "",
			platform: r?.platform ?? n.platform ?? null,
			// What the node runs now (its own signed gossip), before what it ran when it joined (the record).
			engineVersion: n.version ?? r?.engineVersion ?? null,
			self: n.self,
			labels: r?.labels ?? n.labels,
		};
	});
}

/** tsswarm init's address pools: where networks without --subnet get theirs. */
function initOptions(b: InitRequest): InitOptions {
	const pools = b.addrPools && b.addrPools.length > 0 ? b.addrPools : ["10.0.0.0/8"];
	const subnetSize = b.subnetSize ?? 24;
	for (const p of pools) {
		const cidr = parseCidr(p);
		if (cidr.prefix > subnetSize) throw new UsageError(`address pool ${p} is smaller than one /${subnetSize} subnet`);
	}
	if (subnetSize < 8 || subnetSize > 29)
		throw new UsageError(`--default-addr-pool-mask-length must be 8 to 29, got ${subnetSize}`);
	return { addrPools: pools.map((p) => parseCidr(p).text), subnetSize, ...(b.autolock ? { autolock: true } : {}) };
}
