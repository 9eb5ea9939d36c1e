// A loaded compose file as what the agent's API takes: one service spec per compose service
// (named STACK_SERVICE, labelled com.docker.stack.namespace=STACK) and the networks to create,
// as docker's cli/compose/convert does. Every refusal names the service and the key; nothing
// here talks to the cluster, so a bad file is refused before anything changes.
import { homedir } from "node:os";
import { resolve } from "node:path";
import type { NetworkCreateRequest } from "../../agent/api/index.ts";
import { UsageError } from "../errors.ts";
import { bytes, durationMs, nanoCpus } from "../service/flags.ts";
import { parseEnvFile } from "./compose/envfile.ts";
import type { LoadedCompose } from "./compose/load.ts";
import { type Dict, isDict, type LongPort, type LongVolume } from "./compose/normalize.ts";
import { ComposeError, ComposeReferenceError, ComposeUnsupportedError } from "./errors.ts";

export const NAMESPACE_LABEL = "com.docker.stack.namespace";
export const IMAGE_LABEL = "com.docker.stack.image";

export interface PlannedNetwork {
	/** The key in the file ("default" for the implicit one). */
	key: string;
	/** The cluster's name for it. */
	name: string;
	external: boolean;
	/** What `network create` sends (not for external networks). */
	create?: NetworkCreateRequest;
}

export interface PlannedService {
	key: string;
	name: string;
	/** The image as the file names it (deploy pins its digest). */
	image: string;
	/** The raw spec the API validates (service create's shape). */
	spec: Dict;
	/** Services this one waits for on the first deployment. */
	dependsOn: Record<string, string>;
}

export interface StackPlan {
	stack: string;
	networks: PlannedNetwork[];
	services: PlannedService[];
	/** tsswarm's own warnings (values it ignores), for stderr. */
	notices: string[];
}

const STACK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,40}$/;

/** A stack name as docker accepts it (it prefixes every object's name). */
export function checkStackName(stack: string): void {
	if (!STACK_NAME.test(stack))
		throw new UsageError(
			`invalid stack name "${stack}": use letters, digits, _ . - (at most 41), starting with a letter or digit`,
		);
}

/** docker's shell words: "sh -c 'echo hi'" -> [sh, -c, echo hi]. */
export function shellSplit(s: string): string[] {
	const out: string[] = [];
	let cur = "";
	let has = false;
	let q: string | undefined;
	for (let i = 0; i < s.length; i++) {
		const c = s[i]!;
		if (q) {
			if (c === q) q = undefined;
			else if (c === "\\" && q === '"' && i + 1 < s.length) cur += s[++i];
			else cur += c;
		} else if (c === "'" || c === '"') {
			q = c;
			has = true;
		} else if (c === "\\" && i + 1 < s.length) {
			cur += s[++i];
			has = true;
		} else if (/\s/.test(c)) {
			if (has || cur) out.push(cur);
			cur = "";
			has = false;
		} else cur += c;
	}
	if (q) throw new ComposeError(`unterminated quote in "${s}"`);
	if (has || cur) out.push(cur);
	return out;
}

/** Units through the service flags' parsers, their errors as the compose key's. */
function unit<T>(fn: (v: string, what: string) => T, v: unknown, path: string): T {
	try {
		return fn(String(v), path);
	} catch (err) {
		if (err instanceof UsageError) throw new ComposeError(err.message.replace(/^invalid /, "invalid value for "));
		throw err;
	}
}
const ms = (v: unknown, path: string) => unit(durationMs, v, path);

const strMap = (v: unknown): Record<string, string> =>
	Object.fromEntries(Object.entries((v ?? {}) as Dict).map(([k, x]) => [k, x === null ? "" : String(x)]));

class Converter {
	readonly notices: string[] = [];
	readonly stack: string;
	readonly loaded: LoadedCompose;
	constructor(stack: string, loaded: LoadedCompose) {
		this.stack = stack;
		this.loaded = loaded;
	}

	get config(): Dict {
		return this.loaded.config;
	}
	scoped(name: string): string {
		return `${this.stack}_${name}`;
	}
	notice(path: string, what: string): void {
		this.notices.push(`${path}: ${what}`);
	}

	/** A top-level entry's cluster name: its `name:`, as is when external, else STACK_KEY. */
	objectName(section: string, key: string): { name: string; external: boolean } {
		const d = ((this.config[section] ?? {}) as Dict)[key];
		const o = isDict(d) ? d : {};
		const ext = o.external === true || o.external === "true" || isDict(o.external);
		const extName = isDict(o.external) && typeof o.external.name === "string" ? o.external.name : undefined;
		if (ext) return { name: String(o.name ?? extName ?? key), external: true };
		return { name: typeof o.name === "string" ? o.name : this.scoped(key), external: false };
	}

	networks(used: Set<string>): PlannedNetwork[] {
		const declared = (this.config.networks ?? {}) as Dict;
		return [...used].sort().map((key) => {
			const { name, external } = this.objectName("networks", key);
			if (external) return { key, name, external };
			const n = (isDict(declared[key]) ? declared[key] : {}) as Dict;
			const at = `networks.${key}`;
			const driver = String(n.driver ?? "overlay");
			if (driver !== "overlay")
				throw new ComposeUnsupportedError(
					`${at}.driver: ${driver} networks cannot be used by a stack (tsswarm's stack networks are overlay networks)`,
				);
			const create: NetworkCreateRequest = {
				name,
				driver: "overlay",
				labels: { ...strMap(n.labels), [NAMESPACE_LABEL]: this.stack },
			};
			if (isDict(n.driver_opts)) create.options = strMap(n.driver_opts);
			if (n.attachable === true || n.attachable === "true") create.attachable = true;
			if (n.internal === true || n.internal === "true") create.internal = true;
			const ipam = isDict(n.ipam) ? n.ipam : {};
			const pools = Array.isArray(ipam.config) ? (ipam.config as Dict[]) : [];
			if (pools.length > 1) this.notice(`${at}.ipam.config`, "only the first subnet is used");
			if (pools[0]?.subnet) create.subnet = String(pools[0].subnet);
			if (pools[0]?.gateway) create.gateway = String(pools[0].gateway);
			for (const k of ["enable_ipv6", "enable_ipv4"]) if (n[k] !== undefined) this.notice(`${at}.${k}`, "ignored");
			return { key, name, external, create };
		});
	}

	service(key: string, s: Dict, usedNetworks: Set<string>): PlannedService {
		const at = `services.${key}`;
		const image = typeof s.image === "string" ? s.image : "";
		if (!image) throw new ComposeError(`invalid image reference for service ${key}: no image specified`);
		const name = this.scoped(key);
		const container: Dict = {
			image,
			env: this.env(s, at),
			labels: { ...strMap(s.labels), [NAMESPACE_LABEL]: this.stack },
			mounts: this.mounts(s, at),
			capAdd: (s.cap_add as string[] | undefined) ?? [],
			capDrop: (s.cap_drop as string[] | undefined) ?? [],
		};
		const words = (v: unknown) => (typeof v === "string" ? shellSplit(v) : (v as unknown[]).map(String));
		if (s.entrypoint !== undefined && s.entrypoint !== null) container.command = words(s.entrypoint);
		if (s.command !== undefined && s.command !== null) container.args = words(s.command);
		if (s.user !== undefined) container.user = String(s.user);
		if (s.working_dir !== undefined) container.workdir = String(s.working_dir);
		if (s.hostname !== undefined) container.hostname = String(s.hostname);
		if (s.stop_signal !== undefined) container.stopSignal = String(s.stop_signal);
		if (s.stop_grace_period !== undefined)
			container.stopGracePeriodMs = ms(s.stop_grace_period, `${at}.stop_grace_period`);
		if (s.read_only === true || s.read_only === "true") container.readOnly = true;
		if (isDict(s.ulimits))
			container.ulimits = Object.keys(s.ulimits)
				.sort()
				.map((name) => {
					const u = (s.ulimits as Dict)[name];
					const [soft, hard] = isDict(u) ? [Number(u.soft), Number(u.hard)] : [Number(u), Number(u)];
					return { name, soft, hard };
				});
		const hc = this.healthcheck(s.healthcheck, `${at}.healthcheck`);
		if (hc) container.healthcheck = hc;

		const deploy = (isDict(s.deploy) ? s.deploy : {}) as Dict;
		const nets = this.serviceNetworks(key, s, at);
		for (const n of nets) usedNetworks.add(n.key);
		const spec: Dict = {
			name,
			labels: { ...strMap(deploy.labels), [NAMESPACE_LABEL]: this.stack, [IMAGE_LABEL]: image },
			mode: this.mode(deploy, at),
			task: {
				container,
				resources: this.resources(deploy.resources, `${at}.deploy.resources`),
				restartPolicy: this.restart(deploy.restart_policy, `${at}.deploy.restart_policy`),
				placement: this.placement(deploy.placement, `${at}.deploy.placement`),
				networks: nets.map((n) => ({ target: n.name, aliases: n.aliases })),
			},
			endpoint: {
				mode: String(deploy.endpoint_mode ?? "vip"),
				ports: ((s.ports ?? []) as LongPort[]).map((p, i) => this.port(p, `${at}.ports[${i}]`)),
			},
			update: this.policy(deploy.update_config, `${at}.deploy.update_config`),
			rollback: this.policy(deploy.rollback_config, `${at}.deploy.rollback_config`),
		};
		const dependsOn = Object.fromEntries(
			Object.entries((s.depends_on ?? {}) as Record<string, Dict>).map(([k, v]) => [k, String(v.condition)]),
		);
		return { key, name, image, spec, dependsOn };
	}

	env(s: Dict, at: string): string[] {
		const vars: Record<string, string> = {};
		(s.env_file as unknown[] | undefined)?.forEach((f, i) => {
			const o = isDict(f) ? f : { path: f };
			const path = resolve(this.loaded.workingDir, String(o.path));
			let text: string;
			try {
				text = this.read(path);
			} catch (err) {
				if (o.required === false || o.required === "false") return;
				throw new ComposeError(`${at}.env_file[${i}]: ${(err as Error).message}`, "ERR_COMPOSE_ENV_FILE");
			}
			Object.assign(vars, parseEnvFile(text, path, this.loaded.env));
		});
		for (const [k, v] of Object.entries((s.environment ?? {}) as Record<string, string | null>)) {
			if (v !== null) vars[k] = v;
			else if (this.loaded.env[k] !== undefined) vars[k] = this.loaded.env[k]!;
			else delete vars[k];
		}
		return Object.keys(vars)
			.sort()
			.map((k) => `${k}=${vars[k]}`);
	}

	read: (path: string) => string = () => {
		throw new Error("no reader");
	};

	hostPath(p: string): string {
		if (p === "~" || p.startsWith("~/")) return resolve(homedir(), p.slice(2));
		return resolve(this.loaded.workingDir, p);
	}

	mounts(s: Dict, at: string): Dict[] {
		const out: Dict[] = [];
		((s.volumes ?? []) as LongVolume[]).forEach((v, i) => {
			const p = `${at}.volumes[${i}]`;
			const ro = v.read_only ? { readOnly: true } : {};
			for (const k of ["consistency", "bind", "volume", "image"])
				if (v[k] !== undefined) this.notice(`${p}.${k}`, "ignored");
			if (v.type === "bind") {
				if (!v.source) throw new ComposeError(`${p}: a bind mount needs a source`);
				out.push({ type: "bind", source: this.hostPath(v.source), target: v.target, ...ro });
			} else if (v.type === "volume") {
				if (!v.source) {
					out.push({ type: "volume", target: v.target, ...ro });
					return;
				}
				const declared = (this.config.volumes ?? {}) as Dict;
				if (!(v.source in declared))
					throw new ComposeReferenceError(`service ${at.slice(9)}: undefined volume "${v.source}"`);
				const vol = isDict(declared[v.source]) ? (declared[v.source] as Dict) : {};
				if (vol.driver !== undefined && vol.driver !== "local")
					throw new ComposeUnsupportedError(
						`volumes.${v.source}.driver: ${String(vol.driver)} volumes are not supported (named volumes are local to each node)`,
					);
				if (vol.driver_opts !== undefined) this.notice(`volumes.${v.source}.driver_opts`, "ignored");
				out.push({ type: "volume", source: this.objectName("volumes", v.source).name, target: v.target, ...ro });
			} else if (v.type === "tmpfs") {
				if (v.tmpfs !== undefined)
					this.notice(`${p}.tmpfs`, "size and mode are ignored (tmpfs mounts take the default size)");
				out.push({ type: "tmpfs", target: v.target });
			} else
				throw new ComposeUnsupportedError(`${p}.type: ${v.type} mounts are not supported (use bind, volume or tmpfs)`);
		});
		((s.tmpfs ?? []) as string[]).forEach((t, i) => {
			const [target, opts] = String(t).split(":");
			if (opts) this.notice(`${at}.tmpfs[${i}]`, `options ${opts} are ignored`);
			out.push({ type: "tmpfs", target });
		});
		return out;
	}

	healthcheck(v: unknown, at: string): Dict | undefined {
		if (!isDict(v)) return undefined;
		if (v.disable === true || v.disable === "true") return { test: ["NONE"] };
		if (v.start_interval !== undefined) this.notice(`${at}.start_interval`, "ignored");
		let test: string[];
		if (v.test === undefined) {
			if (["interval", "timeout", "retries", "start_period"].some((k) => v[k] !== undefined))
				throw new ComposeUnsupportedError(
					`${at}: interval, timeout, retries and start_period need a test (tsswarm does not adjust the image's own check)`,
				);
			return undefined;
		}
		if (typeof v.test === "string") test = ["CMD-SHELL", v.test];
		else test = (v.test as unknown[]).map(String);
		return {
			test,
			...(v.interval !== undefined ? { intervalMs: ms(v.interval, `${at}.interval`) } : {}),
			...(v.timeout !== undefined ? { timeoutMs: ms(v.timeout, `${at}.timeout`) } : {}),
			...(v.retries !== undefined ? { retries: Number(v.retries) } : {}),
			...(v.start_period !== undefined ? { startPeriodMs: ms(v.start_period, `${at}.start_period`) } : {}),
		};
	}

	serviceNetworks(key: string, s: Dict, at: string) {
		const declared = (this.config.networks ?? {}) as Dict;
		const nets = (s.networks ?? { default: null }) as Record<string, Dict | null>;
		return Object.entries(nets).map(([n, o]) => {
			if (n !== "default" && !(n in declared))
				throw new ComposeReferenceError(`service ${key}: undefined network "${n}"`);
			for (const k of Object.keys(o ?? {}))
				if (k !== "aliases" && !k.startsWith("x-")) this.notice(`${at}.networks.${n}.${k}`, "ignored");
			const aliases = [key, ...((o?.aliases as string[] | undefined) ?? []).map(String)];
			return { key: n, name: this.objectName("networks", n).name, aliases: [...new Set(aliases)] };
		});
	}

	mode(d: Dict, at: string): Dict {
		const mode = String(d.mode ?? "replicated");
		const replicas = d.replicas === undefined ? undefined : Number(d.replicas);
		if (replicas !== undefined && !Number.isSafeInteger(replicas))
			throw new ComposeError(`${at}.deploy.replicas: "${String(d.replicas)}" is not a whole number`);
		if (mode === "replicated") return { kind: mode, replicas: replicas ?? 1 };
		if (mode === "replicated-job") return { kind: mode, maxConcurrent: replicas ?? 1, totalCompletions: replicas ?? 1 };
		if (mode === "global" || mode === "global-job") {
			if (replicas !== undefined)
				throw new ComposeError(`${at}.deploy: replicas can only be used with replicated or replicated-job mode`);
			return { kind: mode };
		}
		throw new ComposeError(`${at}.deploy.mode: unknown mode: ${mode}`);
	}

	resources(v: unknown, at: string): Dict {
		const r = isDict(v) ? v : {};
		const one = (x: unknown, p: string): Dict => {
			const o = isDict(x) ? x : {};
			for (const k of Object.keys(o))
				if (!["cpus", "memory"].includes(k) && !k.startsWith("x-")) this.notice(`${p}.${k}`, "ignored");
			return {
				...(o.cpus !== undefined ? { nanoCpus: unit(nanoCpus, o.cpus, `${p}.cpus`) } : {}),
				...(o.memory !== undefined ? { memoryBytes: unit(bytes, o.memory, `${p}.memory`) } : {}),
			};
		};
		return { limits: one(r.limits, `${at}.limits`), reservations: one(r.reservations, `${at}.reservations`) };
	}

	restart(v: unknown, at: string): Dict {
		if (!isDict(v)) return {};
		const condition = v.condition === undefined ? undefined : String(v.condition);
		if (condition !== undefined && !["none", "on-failure", "any"].includes(condition))
			throw new ComposeError(
				`${at}.condition: invalid restart policy: unknown policy '${condition}' (must be one of 'none', 'on-failure', or 'any')`,
			);
		const attempts = v.max_attempts === undefined ? undefined : Number(v.max_attempts);
		if (attempts !== undefined && !(attempts >= 0))
			throw new ComposeError(`${at}.max_attempts: invalid restart policy: maximum retry count cannot be negative`);
		return {
			...(condition ? { condition } : {}),
			...(v.delay !== undefined ? { delayMs: ms(v.delay, `${at}.delay`) } : {}),
			...(attempts !== undefined ? { maxAttempts: attempts } : {}),
			...(v.window !== undefined ? { windowMs: ms(v.window, `${at}.window`) } : {}),
		};
	}

	placement(v: unknown, at: string): Dict {
		const p = isDict(v) ? v : {};
		const prefs = ((p.preferences ?? []) as Dict[]).map((x, i) => {
			if (typeof x.spread !== "string") throw new ComposeError(`${at}.preferences[${i}]: only spread is supported`);
			return { spread: x.spread };
		});
		return {
			constraints: ((p.constraints ?? []) as unknown[]).map(String),
			preferences: prefs,
			...(p.max_replicas_per_node !== undefined ? { maxReplicasPerNode: Number(p.max_replicas_per_node) } : {}),
		};
	}

	policy(v: unknown, at: string): Dict {
		if (!isDict(v)) return {};
		return {
			...(v.parallelism !== undefined ? { parallelism: Number(v.parallelism) } : {}),
			...(v.delay !== undefined ? { delayMs: ms(v.delay, `${at}.delay`) } : {}),
			...(v.failure_action !== undefined ? { failureAction: String(v.failure_action) } : {}),
			...(v.monitor !== undefined ? { monitorMs: ms(v.monitor, `${at}.monitor`) } : {}),
			...(v.max_failure_ratio !== undefined ? { maxFailureRatio: Number(v.max_failure_ratio) } : {}),
			...(v.order !== undefined ? { order: String(v.order) } : {}),
		};
	}

	port(p: LongPort, at: string): Dict {
		if (p.host_ip !== undefined) this.notice(`${at}.host_ip`, "ignored: a published port listens on every address");
		for (const k of ["name", "app_protocol"]) if (p[k] !== undefined) this.notice(`${at}.${k}`, "ignored");
		if (p.protocol !== "tcp" && p.protocol !== "udp")
			throw new ComposeUnsupportedError(`${at}.protocol: ${p.protocol} is not supported (tcp or udp)`);
		if (p.mode !== "ingress" && p.mode !== "host")
			throw new ComposeError(`${at}.mode: "${p.mode}" must be ingress or host`);
		return {
			targetPort: p.target,
			protocol: p.protocol,
			publishMode: p.mode,
			...(p.published !== undefined ? { publishedPort: p.published } : {}),
		};
	}
}

/** Services in an order where each comes after those it depends on; a cycle is refused. */
function ordered(services: PlannedService[]): PlannedService[] {
	const by = new Map(services.map((s) => [s.key, s]));
	const out: PlannedService[] = [];
	const state = new Map<string, "visiting" | "done">();
	const visit = (s: PlannedService, chain: string[]) => {
		if (state.get(s.key) === "done") return;
		if (state.get(s.key) === "visiting")
			throw new ComposeError(`depends_on has a cycle: ${[...chain, s.key].join(" -> ")}`, "ERR_COMPOSE_CYCLE");
		state.set(s.key, "visiting");
		for (const d of Object.keys(s.dependsOn)) {
			const dep = by.get(d);
			if (!dep) throw new ComposeReferenceError(`service ${s.key} depends on undefined service "${d}"`);
			visit(dep, [...chain, s.key]);
		}
		state.set(s.key, "done");
		out.push(s);
	};
	for (const s of [...services].sort((a, b) => a.key.localeCompare(b.key))) visit(s, []);
	return out;
}

/** The whole stack: services (dependencies first) and the networks they use. */
export function planStack(stack: string, loaded: LoadedCompose, read: (path: string) => string): StackPlan {
	checkStackName(stack);
	const c = new Converter(stack, loaded);
	c.read = read;
	const used = new Set<string>();
	const services = Object.entries((loaded.config.services ?? {}) as Dict).map(([k, s]) =>
		c.service(k, (s ?? {}) as Dict, used),
	);
	const networks = c.networks(used);
	const published = new Map<string, string>();
	for (const s of services)
		for (const p of ((s.spec.endpoint as Dict).ports as Dict[]).filter((p) => p.publishMode === "ingress")) {
			if (p.publishedPort === undefined) continue;
			const key = `${String(p.publishedPort)}/${String(p.protocol)}`;
			const other = published.get(key);
			if (other && other !== s.key)
				throw new ComposeError(
					`services ${other} and ${s.key} both publish ${key}: a published port serves one service`,
				);
			published.set(key, s.key);
		}
	return { stack, networks, services: ordered(services), notices: c.notices };
}
