// The messages of /tsswarm/dispatch/1 (one long-lived stream per worker session) and their checks:
// both ends parse every frame whole, within bounds, before acting on it. The worker's node id is
// the Noise-authenticated peer, never a field; a worker only ever sees its own tasks.
import { type DesiredState, TASK_STATES, type Task, type TaskState, type TaskStatus } from "../services/index.ts";
import { MAX_FILE_DATA, type Network } from "../store/index.ts";
import { BadDispatchMessageError } from "./errors.ts";

export const DISPATCH_PROTOCOL = "/tsswarm/dispatch/1";

export const LIMITS = {
	/** Reports in one status frame (the worker splits bigger batches). */
	reportsPerFrame: 1000,
	/** Tasks (and removed ids) in one assignments frame; a bigger set is sent in chunks (`more`). */
	tasksPerFrame: 1000,
	networksPerFrame: 1000,
	/** Secrets and configs in one frame. */
	filesPerFrame: 1000,
	/** Network views in one frame; entries (endpoints, services, backends) in one view or the mesh. */
	viewsPerFrame: 1000,
	viewEntries: 100_000,
	/** Bytes the leader puts into one assignments frame before it starts the next chunk. */
	chunkBytes: 1 << 20,
	idBytes: 128,
	messageChars: 1024,
	errChars: 4096,
	/** Heartbeat periods a manager may ask for. */
	minHeartbeatMs: 50,
	maxHeartbeatMs: 60_000,
} as const;

/** One task's observed status, as the worker reports it. */
export interface StatusReport {
	taskId: string;
	status: TaskStatus;
}

/**
 * A network a task of this worker is attached to: the store's record (agent/worker's
 * AssignedNetwork takes it as is; `peers`, the VXLAN flood list, is not filled in yet).
 */
export type AssignedNetwork = Network & { peers?: string[] };

/** A service as the tasks of one network find it: by name and aliases (DNS), through its VIP. */
export interface ViewService {
	id: string;
	name: string;
	/** Other names on this network (the attachments' aliases). */
	aliases: string[];
	/** Its virtual IP on this network (bare address); none in dnsrr mode. */
	vip?: string;
	mode: "vip" | "dnsrr";
	/** Addresses on this network of its running (and healthy, if it has a health check) tasks. */
	backends: string[];
}

/**
 * What a node needs to know of one network beyond its own tasks: every endpoint on other nodes
 * (address -> the underlay address of its node: FDB/ARP), the nodes carrying it (`peers`, the
 * VXLAN flood list) and its services (DNS, VIPs). Always sent whole.
 */
export interface NetworkView {
	networkId: string;
	peers: string[];
	endpoints: Array<{ address: string; vtep: string }>;
	services: ViewService[];
}

/** One published port of the routing mesh: every node answers it, DNATed to `backends` on ingress. */
export interface MeshPort {
	protocol: "tcp" | "udp";
	publishedPort: number;
	targetPort: number;
	/** Ingress addresses of the service's running (healthy) tasks. */
	backends: string[];
}

/** The routing mesh as this node runs it: its own ingress endpoint and every ingress-published port. */
export interface MeshView {
	/** The ingress network's id, when there is one. */
	networkId?: string;
	/** This node's address on ingress (bare); none when the reserved range is used up. */
	address?: string;
	ports: MeshPort[];
}

/**
 * The data of one secret or config version a task of this node uses: sent once per session
 * (a version's data never changes), before or with the first task that needs it. Secrets are
 * opened by the leader and travel only inside the Noise-encrypted session.
 */
export interface AssignedFile {
	kind: "secret" | "config";
	id: string;
	version: number;
	data: Uint8Array;
}

/** Notices a worker takes besides the base protocol (named in its hello; the leader sends no others). */
export const NOTICES = ["directory"] as const;
export type Notice = (typeof NOTICES)[number];

export type WorkerMessage =
	| { t: "hello"; sessionId: string; notices?: Notice[] }
	| { t: "status"; reports: StatusReport[] }
	| { t: "heartbeat" };

/** A full set replaces everything the worker has; `more` says another chunk of the same set follows. */
export interface AssignmentsMessage {
	t: "assignments";
	full: boolean;
	tasks: Task[];
	removed: string[];
	networks: AssignedNetwork[];
	/** Views replaced (a full set: the view of every network it names). */
	views?: NetworkView[];
	/** The routing mesh, replaced whole; always in a full set (on its first frame). */
	mesh?: MeshView;
	/** Secret and config data the tasks use that this session has not sent yet. */
	files?: AssignedFile[];
	more?: boolean;
}

export type LeaderMessage =
	| { t: "session"; sessionId: string; heartbeatMs: number }
	| AssignmentsMessage
	| { t: "heartbeat" }
	| { t: "redirect"; leader: { id: string; addr: string } }
	| { t: "error"; code: string; message?: string }
	/** This node's record changed (its role) at store version `version`: refresh the directory now. */
	| { t: "directory"; version: number }
	/** A message type of a newer leader: ignored (a leader sends only the notices a hello named). */
	| { t: "unknown"; type: string };

const DESIRED: ReadonlySet<string> = new Set<DesiredState>(["ready", "running", "complete", "shutdown", "remove"]);
const STATES: ReadonlySet<string> = new Set(TASK_STATES);
const HEALTH: ReadonlySet<string> = new Set(["starting", "healthy", "unhealthy"]);
const ADDR = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d{1,5}$/;

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
const isId = (v: unknown): v is string =>
	typeof v === "string" && v.length > 0 && Buffer.byteLength(v) <= LIMITS.idBytes;
const show = (v: unknown) => (JSON.stringify(v) ?? String(v)).slice(0, 64);

/** A task status from the wire: known fields only, each bounded; throws BadDispatchMessageError. */
export function parseStatus(peer: string, raw: unknown, at: string): TaskStatus {
	const bad = (why: string): never => {
		throw new BadDispatchMessageError(peer, `${at}: ${why}`);
	};
	if (!isObject(raw)) return bad("status must be an object");
	if (typeof raw.state !== "string" || !STATES.has(raw.state)) bad(`unknown state ${show(raw.state)}`);
	if (typeof raw.message !== "string" || raw.message.length > LIMITS.messageChars)
		bad(`message must be a string of at most ${LIMITS.messageChars} characters`);
	if (typeof raw.timestamp !== "string" || raw.timestamp.length > 64 || Number.isNaN(Date.parse(raw.timestamp)))
		bad("timestamp must be a date");
	if (raw.err !== undefined && (typeof raw.err !== "string" || raw.err.length > LIMITS.errChars))
		bad(`err must be a string of at most ${LIMITS.errChars} characters`);
	if (raw.containerId !== undefined && !isId(raw.containerId)) bad("containerId must be a short string");
	if (raw.exitCode !== undefined && !Number.isSafeInteger(raw.exitCode)) bad("exitCode must be an integer");
	if (raw.health !== undefined && (typeof raw.health !== "string" || !HEALTH.has(raw.health)))
		bad(`unknown health ${show(raw.health)}`);
	const known = new Set(["state", "message", "timestamp", "err", "containerId", "exitCode", "health"]);
	for (const k of Object.keys(raw)) if (!known.has(k)) bad(`unknown field ${show(k)}`);
	return {
		state: raw.state as TaskState,
		message: raw.message as string,
		timestamp: raw.timestamp as string,
		...(raw.err !== undefined ? { err: raw.err as string } : {}),
		...(raw.containerId !== undefined ? { containerId: raw.containerId as string } : {}),
		...(raw.exitCode !== undefined ? { exitCode: raw.exitCode as number } : {}),
		...(raw.health !== undefined ? { health: raw.health as TaskStatus["health"] } : {}),
	};
}

/** On the leader: a frame from worker `peer`. Throws BadDispatchMessageError naming the peer. */
export function parseWorkerMessage(peer: string, raw: unknown): WorkerMessage {
	const bad = (why: string): never => {
		throw new BadDispatchMessageError(peer, why);
	};
	if (!isObject(raw)) return bad("expected an object with a type `t`");
	if (raw.t === "heartbeat") return { t: "heartbeat" };
	if (raw.t === "hello") {
		if (!isId(raw.sessionId)) bad(`hello needs a sessionId of 1 to ${LIMITS.idBytes} bytes`);
		// Notices this worker takes; names it does not know (a newer worker's) are left out.
		const n = raw.notices;
		if (n !== undefined && (!Array.isArray(n) || n.length > 16 || !n.every(isId)))
			bad("notices must be a list of at most 16 names");
		const notices = NOTICES.filter((x) => (n as string[] | undefined)?.includes(x));
		return { t: "hello", sessionId: raw.sessionId as string, ...(notices.length ? { notices } : {}) };
	}
	if (raw.t === "status") {
		const r = raw.reports;
		if (!Array.isArray(r) || r.length === 0) return bad("status needs a non-empty list of reports");
		if (r.length > LIMITS.reportsPerFrame) bad(`more than ${LIMITS.reportsPerFrame} reports in one frame`);
		const reports = r.map((x: unknown, i) => {
			if (!isObject(x) || !isId(x.taskId)) return bad(`report ${i}: taskId must be a short string`);
			return { taskId: x.taskId, status: parseStatus(peer, x.status, `report ${i} (task ${x.taskId})`) };
		});
		return { t: "status", reports };
	}
	return bad(`unknown message type ${show(raw.t)}`);
}

function parseTask(peer: string, self: string, raw: unknown, i: number): Task {
	const bad = (why: string): never => {
		throw new BadDispatchMessageError(peer, `task ${i}: ${why}`);
	};
	if (!isObject(raw)) return bad("not an object");
	if (!isId(raw.id)) bad("id must be a short string");
	// Never run what is not ours, whatever a manager says.
	if (raw.nodeId !== self) bad(`task ${show(raw.id)} is assigned to ${show(raw.nodeId)}, not to this node`);
	if (!isId(raw.serviceId) || typeof raw.serviceName !== "string") bad("serviceId and serviceName must be strings");
	if (typeof raw.desiredState !== "string" || !DESIRED.has(raw.desiredState))
		bad(`unknown desiredState ${show(raw.desiredState)}`);
	if (!isObject(raw.spec)) bad("spec must be an object");
	if (!Array.isArray(raw.networks)) bad("networks must be a list");
	if (!Number.isSafeInteger(raw.specVersion)) bad("specVersion must be an integer");
	parseStatus(peer, raw.status, `task ${i} status`);
	return raw as unknown as Task;
}

function parseNetwork(peer: string, raw: unknown, i: number): AssignedNetwork {
	const bad = (why: string): never => {
		throw new BadDispatchMessageError(peer, `network ${i}: ${why}`);
	};
	if (!isObject(raw)) return bad("not an object");
	if (!isId(raw.id) || typeof raw.name !== "string") bad("id and name must be strings");
	if (!Number.isSafeInteger(raw.vni)) bad("vni must be an integer");
	if (typeof raw.subnet !== "string" || typeof raw.gateway !== "string") bad("subnet and gateway must be strings");
	return raw as unknown as AssignedNetwork;
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const isIp = (v: unknown): v is string =>
	typeof v === "string" && IPV4.test(v) && v.split(".").every((o) => Number(o) <= 255);

function parseView(peer: string, raw: unknown, i: number): NetworkView {
	const bad = (why: string): never => {
		throw new BadDispatchMessageError(peer, `view ${i}: ${why}`);
	};
	if (!isObject(raw)) return bad("not an object");
	if (!isId(raw.networkId)) bad("networkId must be a short string");
	const ips = (v: unknown, what: string): string[] => {
		if (!Array.isArray(v) || v.length > LIMITS.viewEntries)
			return bad(`${what} must be a list of at most ${LIMITS.viewEntries}`);
		for (const x of v) if (!isIp(x)) bad(`${what}: ${show(x)} is not an IPv4 address`);
		return v as string[];
	};
	ips(raw.peers, "peers");
	const eps = raw.endpoints;
	if (!Array.isArray(eps) || eps.length > LIMITS.viewEntries)
		bad(`endpoints must be a list of at most ${LIMITS.viewEntries}`);
	for (const e of eps as unknown[])
		if (!isObject(e) || !isIp(e.address) || !isIp(e.vtep))
			bad(`endpoint ${show(e)} needs an address and a vtep (IPv4)`);
	const svcs = raw.services;
	if (!Array.isArray(svcs) || svcs.length > LIMITS.viewEntries)
		bad(`services must be a list of at most ${LIMITS.viewEntries}`);
	for (const s of svcs as unknown[]) {
		if (!isObject(s) || !isId(s.id) || typeof s.name !== "string" || s.name.length > 255)
			bad(`service ${show(s)} needs an id and a name`);
		const sv = s as Record<string, unknown>;
		if (sv.mode !== "vip" && sv.mode !== "dnsrr") bad(`service ${show(sv.name)}: mode must be vip or dnsrr`);
		if (sv.vip !== undefined && !isIp(sv.vip)) bad(`service ${show(sv.name)}: vip is not an IPv4 address`);
		if (!Array.isArray(sv.aliases) || sv.aliases.some((a) => typeof a !== "string" || a.length > 255))
			bad(`service ${show(sv.name)}: aliases must be a list of names`);
		ips(sv.backends, `service ${show(sv.name)} backends`);
	}
	return raw as unknown as NetworkView;
}

function parseMesh(peer: string, raw: unknown): MeshView {
	const bad = (why: string): never => {
		throw new BadDispatchMessageError(peer, `mesh: ${why}`);
	};
	if (!isObject(raw)) return bad("not an object");
	if (raw.networkId !== undefined && !isId(raw.networkId)) bad("networkId must be a short string");
	if (raw.address !== undefined && !isIp(raw.address)) bad("address is not an IPv4 address");
	const ports = raw.ports;
	if (!Array.isArray(ports) || ports.length > LIMITS.viewEntries)
		bad(`ports must be a list of at most ${LIMITS.viewEntries}`);
	const port = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= 65535;
	for (const p of ports as unknown[]) {
		if (!isObject(p) || (p.protocol !== "tcp" && p.protocol !== "udp") || !port(p.publishedPort) || !port(p.targetPort))
			bad(`port ${show(p)} needs a protocol (tcp/udp), a publishedPort and a targetPort`);
		const b = (p as Record<string, unknown>).backends;
		if (!Array.isArray(b) || b.length > LIMITS.viewEntries || !b.every(isIp))
			bad(`port ${show((p as Record<string, unknown>).publishedPort)}: backends must be IPv4 addresses`);
	}
	return raw as unknown as MeshView;
}

function parseFile(peer: string, raw: unknown, i: number): AssignedFile {
	const bad = (why: string): never => {
		throw new BadDispatchMessageError(peer, `file ${i}: ${why}`);
	};
	if (!isObject(raw)) return bad("not an object");
	if (raw.kind !== "secret" && raw.kind !== "config") bad("kind must be secret or config");
	if (!isId(raw.id)) bad("id must be a short string");
	if (!Number.isSafeInteger(raw.version) || (raw.version as number) < 1) bad("version must be a positive integer");
	// Never the data itself in an error: only its type and size.
	if (!(raw.data instanceof Uint8Array)) bad(`data must be bytes (got ${typeof raw.data})`);
	if ((raw.data as Uint8Array).length > MAX_FILE_DATA) bad(`data is over ${MAX_FILE_DATA} bytes`);
	for (const k of Object.keys(raw)) if (!["kind", "id", "version", "data"].includes(k)) bad(`unknown field ${show(k)}`);
	return {
		kind: raw.kind as AssignedFile["kind"],
		id: raw.id as string,
		version: raw.version as number,
		data: raw.data as Uint8Array,
	};
}

const list = <T>(peer: string, v: unknown, what: string, max: number, each: (x: unknown, i: number) => T): T[] => {
	if (v === undefined) return [];
	if (!Array.isArray(v)) throw new BadDispatchMessageError(peer, `${what} must be a list`);
	if (v.length > max) throw new BadDispatchMessageError(peer, `more than ${max} ${what} in one frame`);
	return v.map(each);
};

/** On the worker `self`: a frame from manager `peer`. Throws BadDispatchMessageError naming the peer. */
export function parseLeaderMessage(peer: string, self: string, raw: unknown): LeaderMessage {
	const bad = (why: string): never => {
		throw new BadDispatchMessageError(peer, why);
	};
	if (!isObject(raw)) return bad("expected an object with a type `t`");
	switch (raw.t) {
		case "heartbeat":
			return { t: "heartbeat" };
		case "session": {
			const ms = raw.heartbeatMs;
			if (!Number.isSafeInteger(ms) || (ms as number) < LIMITS.minHeartbeatMs || (ms as number) > LIMITS.maxHeartbeatMs)
				bad(`heartbeatMs must be an integer from ${LIMITS.minHeartbeatMs} to ${LIMITS.maxHeartbeatMs}`);
			if (!isId(raw.sessionId)) bad("session needs its sessionId");
			return { t: "session", sessionId: raw.sessionId as string, heartbeatMs: ms as number };
		}
		case "assignments": {
			if (typeof raw.full !== "boolean") bad("assignments need full: true or false");
			if (raw.more !== undefined && typeof raw.more !== "boolean") bad("more must be true or false");
			const tasks = list(peer, raw.tasks, "tasks", LIMITS.tasksPerFrame, (x, i) => parseTask(peer, self, x, i));
			const removed = list(peer, raw.removed, "removed ids", LIMITS.tasksPerFrame, (x, i) =>
				isId(x) ? x : bad(`removed ${i} must be a task id`),
			);
			const networks = list(peer, raw.networks, "networks", LIMITS.networksPerFrame, (x, i) =>
				parseNetwork(peer, x, i),
			);
			const views = list(peer, raw.views, "views", LIMITS.viewsPerFrame, (x, i) => parseView(peer, x, i));
			const mesh = raw.mesh === undefined ? undefined : parseMesh(peer, raw.mesh);
			const files = list(peer, raw.files, "files", LIMITS.filesPerFrame, (x, i) => parseFile(peer, x, i));
			return {
				t: "assignments",
				full: raw.full as boolean,
				tasks,
				removed,
				networks,
				views,
				...(mesh ? { mesh } : {}),
				...(files.length ? { files } : {}),
				more: raw.more === true,
			};
		}
		case "redirect": {
			const l = raw.leader;
			if (!isObject(l) || !isId(l.id) || typeof l.addr !== "string" || !ADDR.test(l.addr))
				bad("redirect needs leader { id, addr: IPv4:PORT }");
			return { t: "redirect", leader: { id: (l as { id: string }).id, addr: (l as { addr: string }).addr } };
		}
		case "error": {
			if (typeof raw.code !== "string" || raw.code.length > 64) bad("error needs a code");
			const message = typeof raw.message === "string" ? raw.message.slice(0, LIMITS.errChars) : undefined;
			return { t: "error", code: raw.code as string, ...(message ? { message } : {}) };
		}
		case "directory": {
			if (!Number.isSafeInteger(raw.version) || (raw.version as number) < 0)
				bad("directory needs a version (a non-negative integer)");
			return { t: "directory", version: raw.version as number };
		}
		default:
			// Tolerated, so a newer leader may add messages: only a typed frame, the type bounded.
			if (typeof raw.t !== "string" || raw.t.length === 0 || raw.t.length > 64)
				return bad(`unknown message type ${show(raw.t)}`);
			return { t: "unknown", type: raw.t };
	}
}
