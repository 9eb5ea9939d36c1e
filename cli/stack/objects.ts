// A stack's secrets and configs: the top-level entries as the objects to create (named
// STACK_KEY, labelled with the namespace; `external` ones must already exist) and each service's
// references as the task template's `secrets` / `configs` entries. Written against the secrets
// API (secret.create {name, data: base64, labels}, config.* alike; task.secrets/configs entries
// {secretId|configId, secretName|configName, target, uid, gid, mode}); ids are filled in by deploy.
import { resolve } from "node:path";
import type { LoadedCompose } from "./compose/load.ts";
import { type Dict, isDict } from "./compose/normalize.ts";
import { NAMESPACE_LABEL } from "./convert.ts";
import { ComposeError, ComposeReferenceError, ComposeUnsupportedError } from "./errors.ts";

export type ObjectKind = "secret" | "config";

export interface PlannedObject {
	kind: ObjectKind;
	key: string;
	name: string;
	external: boolean;
	/** The content (not for external objects). */
	data?: Buffer;
	labels: Record<string, string>;
}

/** One service's use of a secret or config (the object's id is the cluster's, looked up at deploy). */
export interface ObjectUse {
	kind: ObjectKind;
	/** The object's cluster name. */
	name: string;
	target: string;
	uid: string;
	gid: string;
	mode: number;
}

export interface ObjectPlan {
	objects: PlannedObject[];
	/** Service key -> what it mounts. */
	uses: Map<string, ObjectUse[]>;
}

const SECTION: Record<ObjectKind, "secrets" | "configs"> = { secret: "secrets", config: "configs" };

/** The secrets and configs of a loaded file; only those some service uses are planned. */
export function planObjects(stack: string, loaded: LoadedCompose, read: (p: string) => Buffer): ObjectPlan {
	const planned = new Map<string, PlannedObject>();
	const uses = new Map<string, ObjectUse[]>();
	const services = (loaded.config.services ?? {}) as Dict;
	for (const [svcKey, raw] of Object.entries(services)) {
		const s = (raw ?? {}) as Dict;
		const list: ObjectUse[] = [];
		for (const kind of ["secret", "config"] as const) {
			const refs = (s[SECTION[kind]] ?? []) as Array<Dict & { source: string }>;
			refs.forEach((r, i) => {
				const at = `services.${svcKey}.${SECTION[kind]}[${i}]`;
				const obj = planned.get(`${kind}/${r.source}`) ?? planObject(stack, loaded, kind, r.source, svcKey, read);
				planned.set(`${kind}/${r.source}`, obj);
				list.push(use(kind, obj.name, r, at));
			});
		}
		if (list.length) uses.set(svcKey, list);
	}
	return { objects: [...planned.values()], uses };
}

function use(kind: ObjectKind, name: string, r: Dict & { source: string }, at: string): ObjectUse {
	// A secret's relative target is a file under /run/secrets; an absolute one is used as it is.
	const target = r.target === undefined ? (kind === "secret" ? r.source : `/${r.source}`) : String(r.target);
	if (target.split("/").includes("..")) throw new ComposeError(`${at}.target: ${target} must not contain ..`);
	const mode = r.mode === undefined ? 0o444 : typeof r.mode === "number" ? r.mode : Number.parseInt(String(r.mode), 8);
	if (!Number.isInteger(mode) || mode < 0 || mode > 0o777)
		throw new ComposeError(`${at}.mode: ${String(r.mode)} is not a file mode`);
	return {
		kind,
		name,
		target,
		uid: String(r.uid ?? "0"),
		gid: String(r.gid ?? "0"),
		mode,
	};
}

function planObject(
	stack: string,
	loaded: LoadedCompose,
	kind: ObjectKind,
	key: string,
	svcKey: string,
	read: (p: string) => Buffer,
): PlannedObject {
	const declared = (loaded.config[SECTION[kind]] ?? {}) as Dict;
	if (!(key in declared)) throw new ComposeReferenceError(`service ${svcKey}: undefined ${kind} "${key}"`);
	const d = (isDict(declared[key]) ? declared[key] : {}) as Dict;
	const at = `${SECTION[kind]}.${key}`;
	const external = d.external === true || d.external === "true" || isDict(d.external);
	if (external) {
		const extName = isDict(d.external) && typeof d.external.name === "string" ? d.external.name : undefined;
		return { kind, key, name: String(d.name ?? extName ?? key), external, labels: {} };
	}
	for (const k of ["driver", "template_driver"])
		if (d[k] !== undefined) throw new ComposeUnsupportedError(`${at}.${k}: ${kind} drivers are not supported`);
	const name = typeof d.name === "string" ? d.name : `${stack}_${key}`;
	let data: Buffer;
	if (typeof d.file === "string") {
		const path = resolve(loaded.workingDir, d.file);
		try {
			data = read(path);
		} catch (err) {
			throw new ComposeError(`${at}.file: ${(err as Error).message}`, "ERR_COMPOSE_READ");
		}
	} else if (typeof d.environment === "string") {
		const v = loaded.env[d.environment];
		if (v === undefined) throw new ComposeError(`${at}.environment: variable ${d.environment} is not set`);
		data = Buffer.from(v);
	} else if (kind === "config" && typeof d.content === "string") data = Buffer.from(d.content);
	else
		throw new ComposeError(
			`${at}: needs file${kind === "config" ? ", content" : ""} or environment (or external: true)`,
		);
	const labels = Object.fromEntries(
		Object.entries(
			Array.isArray(d.labels)
				? Object.fromEntries((d.labels as string[]).map((l) => [l.split("=")[0], l.split("=").slice(1).join("=")]))
				: ((d.labels ?? {}) as Dict),
		).map(([k, v]) => [k, v === null ? "" : String(v)]),
	);
	return { kind, key, name, external, data, labels: { ...labels, [NAMESPACE_LABEL]: stack } };
}
