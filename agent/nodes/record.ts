// A node's record in the store's `nodes` table: written when the node joins (from what it says
// about itself, checked here), removed by `node rm`. The table is the cluster's allow-list.
import { peerIdFromString } from "@libp2p/peer-id";
import { InvalidNodeDescriptionError } from "./errors.ts";

export type NodeRole = "manager" | "worker";
/** Which role autopilot may give a node: any (auto, the default), or the one the user pinned. */
export type RolePreference = "auto" | "manager" | "worker";
export const ROLE_PREFERENCES: readonly RolePreference[] = ["auto", "manager", "worker"];
export type Availability = "active" | "pause" | "drain";

export interface Platform {
	os: string;
	architecture: string;
	variant?: string;
}

export interface NodeRecord {
	/** The node's libp2p peer id: its identity, never its address. */
	id: string;
	hostname: string;
	/** ip:port the node advertises (libp2p TCP and membership UDP). */
	addr: string;
	role: NodeRole;
	/** `node update --role`, `node promote/demote`, or the manager join token (manager); absent: auto. */
	desiredRole?: RolePreference;
	/** Why the role last changed (autopilot's reason, or the user's command); shown by `tsswarm events`. */
	roleReason?: string;
	availability: Availability;
	labels: Record<string, string>;
	platform: Platform;
	resources: { nanoCpus: number; memoryBytes: number };
	engineVersion: string;
	createdAt: string;
}

/** What a joiner tells about itself in the join request. */
export interface NodeDescription {
	hostname: string;
	addr: string;
	labels: Record<string, string>;
	platform: Platform;
	resources: { nanoCpus: number; memoryBytes: number };
	engineVersion: string;
}

const ADDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3}):(\d{1,5})$/;
const WORD = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
const MAX_LABELS = 64;

export function validAddr(a: unknown): a is string {
	const m = typeof a === "string" ? ADDR.exec(a) : null;
	return !!m && m.slice(1, 5).every((x) => Number(x) <= 255) && Number(m[5]) >= 1 && Number(m[5]) <= 65535;
}

export function validPeerId(id: unknown): id is string {
	if (typeof id !== "string" || id.length > 128) return false;
	try {
		peerIdFromString(id);
		return true;
	} catch {
		return false;
	}
}

/** Checks a joiner's self-description field by field; throws InvalidNodeDescriptionError naming the field. */
export function validateDescription(peer: string, raw: unknown): NodeDescription {
	const bad = (why: string): never => {
		throw new InvalidNodeDescriptionError(peer, why);
	};
	if (!raw || typeof raw !== "object" || Array.isArray(raw)) return bad("expected an object");
	const d = raw as Record<string, unknown>;
	if (!validAddr(d.addr)) bad(`addr must be IPv4:PORT, got ${JSON.stringify(d.addr)?.slice(0, 64)}`);
	if (typeof d.hostname !== "string" || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/.test(d.hostname))
		bad("hostname must be 1 to 253 letters, digits, dots and dashes");
	const p = d.platform as Record<string, unknown> | undefined;
	if (!p || typeof p !== "object") return bad("platform must be an object");
	for (const k of ["os", "architecture"] as const)
		if (typeof p[k] !== "string" || !WORD.test(p[k])) bad(`platform.${k} must be a short word`);
	if (p.variant !== undefined && (typeof p.variant !== "string" || !WORD.test(p.variant)))
		bad("platform.variant must be a short word");
	const r = d.resources as Record<string, unknown> | undefined;
	if (!r || typeof r !== "object") return bad("resources must be an object");
	for (const k of ["nanoCpus", "memoryBytes"] as const)
		if (!Number.isSafeInteger(r[k]) || (r[k] as number) < 0) bad(`resources.${k} must be a non-negative integer`);
	const labels = d.labels ?? {};
	if (typeof labels !== "object" || Array.isArray(labels)) return bad("labels must be an object");
	const entries = Object.entries(labels as Record<string, unknown>);
	if (entries.length > MAX_LABELS) bad(`at most ${MAX_LABELS} labels`);
	for (const [k, v] of entries) {
		if (!LABEL_KEY.test(k)) bad(`label key ${JSON.stringify(k).slice(0, 64)} is not a valid key`);
		if (typeof v !== "string" || v.length > 256) bad(`label ${k} must be a string of at most 256 characters`);
	}
	if (typeof d.engineVersion !== "string" || !/^[0-9A-Za-z.+-]{1,64}$/.test(d.engineVersion))
		bad("engineVersion must be a version string");
	return {
		hostname: d.hostname as string,
		addr: d.addr as string,
		labels: Object.fromEntries(entries) as Record<string, string>,
		platform: {
			os: p.os as string,
			architecture: p.architecture as string,
			...(p.variant ? { variant: p.variant as string } : {}),
		},
		resources: { nanoCpus: r.nanoCpus as number, memoryBytes: r.memoryBytes as number },
		engineVersion: d.engineVersion as string,
	};
}

export function nodeRecord(id: string, role: NodeRole, d: NodeDescription, now = new Date()): NodeRecord {
	return { id, role, availability: "active", createdAt: now.toISOString(), ...d };
}

/** A joiner's record: the manager token pins the manager role; the worker token leaves it to autopilot. */
export function joinRecord(id: string, role: NodeRole, d: NodeDescription, now = new Date()): NodeRecord {
	return { ...nodeRecord(id, role, d, now), ...(role === "manager" ? { desiredRole: "manager" as const } : {}) };
}

/** A whole record that crossed a boundary (a forwarded write); throws InvalidNodeDescriptionError. */
export function parseNodeRecord(raw: unknown): NodeRecord {
	const r = (raw ?? {}) as Partial<Record<keyof NodeRecord, unknown>>;
	const id = validPeerId(r.id) ? r.id : "?";
	if (id === "?") throw new InvalidNodeDescriptionError(String(r.id).slice(0, 64), "id is not a peer id");
	if (r.role !== "manager" && r.role !== "worker")
		throw new InvalidNodeDescriptionError(id, "role must be manager or worker");
	if (r.availability !== "active" && r.availability !== "pause" && r.availability !== "drain")
		throw new InvalidNodeDescriptionError(id, "availability must be active, pause or drain");
	if (typeof r.createdAt !== "string" || Number.isNaN(Date.parse(r.createdAt)))
		throw new InvalidNodeDescriptionError(id, "createdAt must be a date");
	if (r.desiredRole !== undefined && !ROLE_PREFERENCES.includes(r.desiredRole as RolePreference))
		throw new InvalidNodeDescriptionError(id, "desiredRole must be auto, manager or worker");
	return {
		id,
		role: r.role,
		...(r.desiredRole !== undefined ? { desiredRole: r.desiredRole as RolePreference } : {}),
		availability: r.availability,
		createdAt: r.createdAt,
		...validateDescription(id, raw),
	};
}
