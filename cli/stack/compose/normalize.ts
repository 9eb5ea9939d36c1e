// A service's keys in one form each, before files are merged and services converted: lists of
// KEY=VALUE become maps, ports/volumes/secrets/configs their long syntax, networks and depends_on
// maps. Short-syntax mistakes are refused here naming the key path.
import { ComposeSchemaError } from "../errors.ts";

export type Dict = Record<string, unknown>;

export const isDict = (v: unknown): v is Dict => !!v && typeof v === "object" && !Array.isArray(v);

/** ["A=b", "C"] or {A: b, C: null} as a map (null: take the value from the environment). */
export function listOrDict(v: unknown, sep = "="): Record<string, string | null> {
	if (v === undefined || v === null) return {};
	if (Array.isArray(v))
		return Object.fromEntries(
			v.map((e) => {
				const s = String(e);
				const i = s.indexOf(sep);
				return i < 0 ? [s, null] : [s.slice(0, i), s.slice(i + 1)];
			}),
		);
	return Object.fromEntries(
		Object.entries(v as Dict).map(([k, x]) => [k, x === null || x === undefined ? null : String(x)]),
	);
}

export interface LongPort {
	target: number;
	published?: number;
	protocol: string;
	mode: string;
	host_ip?: string;
	[k: string]: unknown;
}

const range = (s: string, where: string, bad: (w: string) => never): [number, number] => {
	const m = /^(\d+)(?:-(\d+))?$/.exec(s);
	if (!m) bad(where);
	const a = Number(m[1]);
	const b = m[2] === undefined ? a : Number(m[2]);
	if (a < 1 || b > 65535 || b < a) bad(where);
	return [a, b];
};

/** "8080:80", "80", "8000-8001:80-81/udp", "127.0.0.1:8080:80", 80, or the long form. */
export function ports(v: unknown, file: string, path: string): LongPort[] {
	if (v === undefined) return [];
	return (v as unknown[]).flatMap((p, i) => {
		const at = `${path}[${i}]`;
		const bad = (why: string): never => {
			throw new ComposeSchemaError(file, at, `"${String(p)}" is not a port: ${why}`);
		};
		if (isDict(p)) {
			const target = Number(p.target);
			if (!Number.isInteger(target) || target < 1 || target > 65535) bad("target must be a port number");
			const out: LongPort = { ...p, target, protocol: String(p.protocol ?? "tcp"), mode: String(p.mode ?? "ingress") };
			if (p.published !== undefined && p.published !== null && p.published !== "") {
				const [a, b] = range(String(p.published), "published must be a port or a range", bad);
				if (a !== b) return Array.from({ length: b - a + 1 }, (_, k) => ({ ...out, published: a + k }));
				out.published = a;
			} else delete out.published;
			return [out];
		}
		const s = String(p);
		const [spec, proto = "tcp"] = s.split("/");
		const parts = spec!.split(":");
		const targetPart = parts.pop()!;
		const publishedPart = parts.pop();
		const host = parts.join(":");
		const [t0, t1] = range(targetPart, "use [[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL]", bad);
		const pub = publishedPart ? range(publishedPart, "the published port must be a port or a range", bad) : undefined;
		if (pub && pub[1] - pub[0] !== t1 - t0) bad("the published and target ranges differ in length");
		return Array.from({ length: t1 - t0 + 1 }, (_, k) => ({
			target: t0 + k,
			...(pub ? { published: pub[0] + k } : {}),
			protocol: proto,
			mode: "ingress",
			...(host ? { host_ip: host } : {}),
		}));
	});
}

export interface LongVolume {
	type: string;
	source?: string;
	target: string;
	read_only?: boolean;
	[k: string]: unknown;
}

/** "name:/data", "./dir:/data:ro", "/data" (anonymous), or the long form. */
export function volumes(v: unknown, file: string, path: string): LongVolume[] {
	if (v === undefined) return [];
	return (v as unknown[]).map((x, i) => {
		if (isDict(x)) {
			const ro = x.read_only === true || x.read_only === "true";
			const { read_only: _, ...rest } = x;
			return { ...rest, type: String(x.type), target: String(x.target ?? ""), ...(ro ? { read_only: true } : {}) };
		}
		const s = String(x);
		const parts = s.split(":");
		if (parts.length > 3 || parts.some((p) => p === ""))
			throw new ComposeSchemaError(file, `${path}[${i}]`, `"${s}" is not a volume: use [SOURCE:]TARGET[:MODE]`);
		if (parts.length === 1) return { type: "volume", target: s };
		const [source, target, mode = "rw"] = parts as [string, string, string?];
		const modes = mode.split(",");
		const bind = /^[./~]/.test(source);
		return {
			type: bind ? "bind" : "volume",
			source,
			target,
			...(modes.includes("ro") ? { read_only: true } : {}),
		};
	});
}

/** "name" or {source, target, uid, gid, mode}: the long form. */
export function fileObjects(v: unknown): Array<Dict & { source: string }> {
	if (v === undefined) return [];
	return (v as unknown[]).map((x) => (isDict(x) ? { ...x, source: String(x.source) } : { source: String(x) }));
}

/** ["a", "b"] or {a: {aliases}, b: null}: a map. */
export function networks(v: unknown): Record<string, Dict | null> {
	if (v === undefined || v === null) return {};
	if (Array.isArray(v)) return Object.fromEntries(v.map((n) => [String(n), null]));
	return Object.fromEntries(Object.entries(v as Dict).map(([k, x]) => [k, isDict(x) ? x : null]));
}

/** ["db"] or {db: {condition}}: {db: {condition}}. */
export function dependsOn(v: unknown): Record<string, Dict> {
	if (v === undefined || v === null) return {};
	if (Array.isArray(v)) return Object.fromEntries(v.map((n) => [String(n), { condition: "service_started" }]));
	return Object.fromEntries(
		Object.entries(v as Dict).map(([k, x]) => [k, { condition: "service_started", ...(isDict(x) ? x : {}) }]),
	);
}

/** One service with every list-or-map key in its one form (the rest as written). */
export function normalizeService(raw: Dict, file: string, name: string): Dict {
	const at = `services.${name}`;
	const s: Dict = { ...raw };
	if (s.environment !== undefined) s.environment = listOrDict(s.environment);
	if (s.labels !== undefined) s.labels = listOrDict(s.labels);
	if (s.ports !== undefined) s.ports = ports(s.ports, file, `${at}.ports`);
	if (s.volumes !== undefined) s.volumes = volumes(s.volumes, file, `${at}.volumes`);
	if (s.secrets !== undefined) s.secrets = fileObjects(s.secrets);
	if (s.configs !== undefined) s.configs = fileObjects(s.configs);
	if (s.networks !== undefined) s.networks = networks(s.networks);
	if (s.depends_on !== undefined) s.depends_on = dependsOn(s.depends_on);
	if (typeof s.env_file === "string") s.env_file = [s.env_file];
	if (typeof s.tmpfs === "string") s.tmpfs = [s.tmpfs];
	if (typeof s.cap_add === "string") s.cap_add = [s.cap_add];
	if (isDict(s.deploy)) {
		const d: Dict = { ...s.deploy };
		if (d.labels !== undefined) d.labels = listOrDict(d.labels);
		s.deploy = d;
	}
	return s;
}
