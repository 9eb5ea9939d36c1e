// Secrets and configs as the manager keeps them: data checked (base64, 1 byte to 500 KB as in
// Swarm), secrets sealed with the managers' cluster secret before they reach the store, a new data
// version on update that rolls the services using it, and removal refused while services use one.
import { randomBytes } from "node:crypto";
import type { ConfigInspect, SecretInspect } from "../api/index.ts";
import { type ManagerKeys, open, seal } from "../keyring/index.ts";
import type { ConfigReference, SecretReference, Service, ServiceSpec } from "../services/index.ts";
import {
	type ClusterStore,
	type Config,
	FILE_OBJECT_NAME,
	MAX_DATA_VERSIONS,
	MAX_FILE_DATA,
	NameInUseError,
	NotFoundError,
	type Op,
	type Secret,
	type StoredRecord,
} from "../store/index.ts";
import type { FileSource } from "./dispatcher/index.ts";
import { FileObjectInUseError, InvalidFileObjectError, NoClusterSecretError } from "./errors.ts";
import { updatedService } from "./updater/index.ts";

export type FileKind = "secret" | "config";
type Keys = () => ManagerKeys | undefined;

/** A secret or config in one shape: `payload` is the sealed data (secrets) or the data (configs). */
interface FileRecord {
	id: string;
	name: string;
	labels: Record<string, string>;
	version: number;
	versions: Array<{ version: number; payload: Uint8Array; size: number; createdAt: string }>;
	createdAt: string;
	updatedAt: string;
}

const fromSecret = (s: Secret): FileRecord => ({
	...s,
	versions: s.versions.map(({ sealed, ...v }) => ({ ...v, payload: sealed })),
});
const fromConfig = (c: Config): FileRecord => ({
	...c,
	versions: c.versions.map(({ data, ...v }) => ({ ...v, payload: data })),
});
const toSecret = (r: FileRecord): Secret => ({
	...r,
	versions: r.versions.map(({ payload, ...v }) => ({ ...v, sealed: payload })),
});
const toConfig = (r: FileRecord): Config => ({
	...r,
	versions: r.versions.map(({ payload, ...v }) => ({ ...v, data: payload })),
});

const records = (store: ClusterStore, kind: FileKind): StoredRecord<FileRecord>[] =>
	kind === "secret"
		? store.list("secrets").map((r) => ({ ...r, value: fromSecret(r.value) }))
		: store.list("configs").map((r) => ({ ...r, value: fromConfig(r.value) }));

function exact(store: ClusterStore, kind: FileKind, ref: string): StoredRecord<FileRecord> | undefined {
	if (kind === "secret") {
		const r = store.get("secrets", ref) ?? store.byName("secrets", ref);
		return r && { ...r, value: fromSecret(r.value) };
	}
	const r = store.get("configs", ref) ?? store.byName("configs", ref);
	return r && { ...r, value: fromConfig(r.value) };
}

/** A secret or config by id, name or unique id prefix (as docker). */
export function findFileObject(store: ClusterStore, kind: FileKind, ref: string): StoredRecord<FileRecord> {
	const hit = exact(store, kind, ref);
	if (hit) return hit;
	const matches = ref.length >= 3 ? records(store, kind).filter((r) => r.id.startsWith(ref)) : [];
	if (matches.length === 1) return matches[0]!;
	if (matches.length > 1) throw new InvalidFileObjectError(kind, `id prefix ${ref} is ambiguous`);
	throw new NotFoundError(kind, ref);
}

const aad = (kind: FileKind, id: string, version: number) => `${kind}:${id}:${version}`;

function secretKey(keys: Keys): Uint8Array {
	const k = keys();
	if (!k) throw new NoClusterSecretError("sealing or opening a secret");
	return k.clusterSecret;
}

/** What the store keeps of `plain`: sealed for a secret (bound to its id and version), as is for a config. */
function payloadOf(kind: FileKind, keys: Keys, id: string, version: number, plain: Uint8Array): Uint8Array {
	return kind === "secret" ? seal(secretKey(keys), plain, aad(kind, id, version)) : plain;
}

function plainOf(kind: FileKind, keys: Keys, id: string, v: FileRecord["versions"][number]): Uint8Array {
	return kind === "secret" ? open(secretKey(keys), v.payload, aad(kind, id, v.version)) : v.payload;
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;

/** The data of a request (base64); its size bounded as Swarm's. Errors say sizes, never content. */
export function parseData(kind: FileKind, raw: unknown): Uint8Array {
	if (typeof raw !== "string" || raw.length % 4 !== 0 || !B64.test(raw))
		throw new InvalidFileObjectError(kind, "data must be base64");
	const data = new Uint8Array(Buffer.from(raw, "base64"));
	if (data.length === 0) throw new InvalidFileObjectError(kind, "data is empty (it must be 1 byte to 500 KB)");
	if (data.length > MAX_FILE_DATA)
		throw new InvalidFileObjectError(
			kind,
			`data is ${kb(data.length)} (${data.length} bytes): at most 500 KB (${MAX_FILE_DATA} bytes), as in Swarm`,
		);
	return data;
}

function parseName(kind: FileKind, raw: unknown): string {
	if (typeof raw !== "string" || !FILE_OBJECT_NAME.test(raw))
		throw new InvalidFileObjectError(
			kind,
			`name ${JSON.stringify(raw)?.slice(0, 80)} must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit`,
		);
	return raw;
}

function parseLabels(kind: FileKind, raw: unknown): Record<string, string> {
	if (raw === undefined) return {};
	if (!raw || typeof raw !== "object" || Array.isArray(raw))
		throw new InvalidFileObjectError(kind, "labels must be a map");
	const e = Object.entries(raw);
	if (e.length > 256) throw new InvalidFileObjectError(kind, "at most 256 labels");
	for (const [k, v] of e)
		if (k.length === 0 || k.length > 256 || typeof v !== "string" || v.length > 4096)
			throw new InvalidFileObjectError(kind, `label ${JSON.stringify(k.slice(0, 64))} must map a key to a string`);
	return { ...(raw as Record<string, string>) };
}

const refsOf = (t: { secrets?: SecretReference[]; configs?: ConfigReference[] }, kind: FileKind) =>
	kind === "secret"
		? (t.secrets ?? []).map((r) => ({ id: r.secretId, version: r.version }))
		: (t.configs ?? []).map((r) => ({ id: r.configId, version: r.version }));

const usesIt = (s: Service, kind: FileKind, id: string) => refsOf(s.spec.task, kind).some((r) => r.id === id);

/** Versions still wanted: by services' specs and previous specs, and by tasks the store still has. */
function versionsInUse(store: ClusterStore, kind: FileKind, id: string): Set<number> {
	const out = new Set<number>();
	const add = (t: Parameters<typeof refsOf>[0] | undefined) => {
		for (const r of t ? refsOf(t, kind) : []) if (r.id === id) out.add(r.version);
	};
	for (const s of store.list("services")) {
		add(s.value.spec.task);
		add(s.value.previousSpec?.task);
	}
	for (const t of store.list("tasks")) add(t.value.spec);
	return out;
}

function op(kind: FileKind, action: "create" | "update", id: string, value: FileRecord, version?: number): Op {
	if (kind === "secret")
		return action === "create"
			? { op: "create", table: "secrets", id, value: toSecret(value) }
			: { op: "update", table: "secrets", id, version: version!, value: toSecret(value) };
	return action === "create"
		? { op: "create", table: "configs", id, value: toConfig(value) }
		: { op: "update", table: "configs", id, version: version!, value: toConfig(value) };
}

const newId = () => randomBytes(16).toString("hex").slice(0, 25);

/** On the leader: `secret create` / `config create`. */
export async function createFileObject(
	store: ClusterStore,
	kind: FileKind,
	keys: Keys,
	body: Record<string, unknown>,
): Promise<StoredRecord<FileRecord>> {
	const name = parseName(kind, body.name);
	const labels = parseLabels(kind, body.labels);
	const data = parseData(kind, body.data);
	await store.barrier();
	if (exact(store, kind, name)) throw new NameInUseError(`${kind}s`, name);
	const id = newId();
	const now = new Date().toISOString();
	const value: FileRecord = {
		id,
		name,
		labels,
		version: 1,
		versions: [{ version: 1, payload: payloadOf(kind, keys, id, 1, data), size: data.length, createdAt: now }],
		createdAt: now,
		updatedAt: now,
	};
	const { versions } = await store.commit([op(kind, "create", id, value)]);
	return { id, version: versions[0]!, createdIndex: versions[0]!, value };
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

/**
 * On the leader: new data (a new version, unless it equals the current one) and/or new labels.
 * Services using the object get the new version in their task template, in the same
 * transaction: the updater rolls them as their update config says.
 */
export async function updateFileObject(
	store: ClusterStore,
	kind: FileKind,
	keys: Keys,
	body: Record<string, unknown>,
): Promise<StoredRecord<FileRecord> & { services: string[] }> {
	const data = body.data === undefined ? undefined : parseData(kind, body.data);
	const labels = body.labels === undefined ? undefined : parseLabels(kind, body.labels);
	await store.barrier();
	const cur = findFileObject(store, kind, String(body.ref ?? ""));
	const c = cur.value;
	const latest = c.versions.find((v) => v.version === c.version)!;
	const newData = data !== undefined && !sameBytes(plainOf(kind, keys, c.id, latest), data);
	const newLabels = labels !== undefined && JSON.stringify(labels) !== JSON.stringify(c.labels);
	if (!newData && !newLabels) return { ...cur, services: [] };
	const now = new Date().toISOString();
	const value: FileRecord = { ...c, labels: labels ?? c.labels, updatedAt: now };
	const ops: Op[] = [];
	const services: string[] = [];
	if (newData) {
		const version = Math.max(...c.versions.map((v) => v.version)) + 1;
		const keep = versionsInUse(store, kind, c.id);
		const kept = c.versions.filter((v) => keep.has(v.version)).slice(-(MAX_DATA_VERSIONS - 1));
		value.version = version;
		value.versions = [
			...kept,
			{ version, payload: payloadOf(kind, keys, c.id, version, data), size: data.length, createdAt: now },
		];
		for (const s of store.list("services")) {
			if (!usesIt(s.value, kind, c.id)) continue;
			const spec: ServiceSpec = structuredClone(s.value.spec);
			if (kind === "secret")
				spec.task.secrets = spec.task.secrets!.map((r) => (r.secretId === c.id ? { ...r, version } : r));
			else spec.task.configs = spec.task.configs!.map((r) => (r.configId === c.id ? { ...r, version } : r));
			ops.push({ op: "update", table: "services", id: s.id, version: s.version, value: updatedService(s.value, spec) });
			services.push(s.value.spec.name);
		}
	}
	const { versions } = await store.commit([op(kind, "update", c.id, value, cur.version), ...ops]);
	return { ...cur, version: versions[0]!, value, services };
}

/** On the leader: remove, refused while a service's spec uses it. */
export async function removeFileObject(
	store: ClusterStore,
	kind: FileKind,
	ref: string,
): Promise<{ id: string; index: number }> {
	await store.barrier();
	const cur = findFileObject(store, kind, ref);
	const users = store
		.list("services")
		.filter((s) => usesIt(s.value, kind, cur.id))
		.map((s) => s.value.spec.name)
		.sort();
	if (users.length) throw new FileObjectInUseError(kind, cur.value.name, users);
	const { index } =
		kind === "secret"
			? await store.commit([{ op: "delete", table: "secrets", id: cur.id, version: cur.version }])
			: await store.commit([{ op: "delete", table: "configs", id: cur.id, version: cur.version }]);
	return { id: cur.id, index };
}

/** What `secret inspect` shows: docker's fields, the data version and size; never the data. */
export function inspectSecret(r: StoredRecord<FileRecord>): SecretInspect {
	const v = r.value;
	return {
		ID: r.id,
		Version: { Index: r.version },
		CreatedAt: v.createdAt,
		UpdatedAt: v.updatedAt,
		Spec: { Name: v.name, Labels: v.labels },
		DataVersion: v.version,
		DataSize: v.versions.find((x) => x.version === v.version)?.size ?? 0,
	};
}

/** `config inspect`: as docker, with the data (base64; configs are not secret). */
export function inspectConfig(r: StoredRecord<FileRecord>): ConfigInspect {
	const cur = r.value.versions.find((x) => x.version === r.value.version);
	const s = inspectSecret(r);
	return { ...s, Spec: { ...s.Spec, Data: Buffer.from(cur?.payload ?? new Uint8Array()).toString("base64") } };
}

/**
 * A service spec's secret and config references resolved (create and update): each names an
 * object that exists (by id, else by name); the id and name are the object's; a version the
 * object no longer keeps (or 0: none given) becomes its current one.
 */
export function resolveFileRefs(store: ClusterStore, spec: ServiceSpec): ServiceSpec {
	const t = spec.task;
	if (!t.secrets && !t.configs) return spec;
	const resolve = (kind: FileKind, id: string, name: string) => {
		const r = (id && exact(store, kind, id)) || exact(store, kind, name);
		if (!r) throw new NotFoundError(kind, name || id);
		return r.value;
	};
	const version = (r: FileRecord, v: number) => (r.versions.some((x) => x.version === v) ? v : r.version);
	const task = { ...t };
	if (t.secrets)
		task.secrets = t.secrets.map((s) => {
			const r = resolve("secret", s.secretId, s.secretName);
			return { ...s, secretId: r.id, secretName: r.name, version: version(r, s.version) };
		});
	if (t.configs)
		task.configs = t.configs.map((s) => {
			const r = resolve("config", s.configId, s.configName);
			return { ...s, configId: r.id, configName: r.name, version: version(r, s.version) };
		});
	return { ...spec, task };
}

/** The dispatcher's source of data: a kept version, secrets opened here (on the leader). */
export function fileSource(store: ClusterStore, keys: Keys, onError: (err: Error) => void): FileSource {
	return (kind, id, version) => {
		const r = exact(store, kind, id);
		const v = r?.value.versions.find((x) => x.version === version);
		if (!r || !v) return undefined;
		try {
			return plainOf(kind, keys, id, v);
		} catch (err) {
			onError(err as Error);
			return undefined;
		}
	};
}
