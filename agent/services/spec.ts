// A service's spec: what `service create` asks for, as the store keeps it and the API takes it.
// Validated whole before anything is stored; each refusal names the field (Swarm's ServiceSpec,
// with durations in milliseconds and sizes in bytes so no unit parsing happens past the CLI).
import { InvalidServiceSpecError } from "./errors.ts";

export type ServiceMode =
	| { kind: "replicated"; replicas: number }
	| { kind: "global" }
	| { kind: "replicated-job"; maxConcurrent: number; totalCompletions: number }
	| { kind: "global-job" };

export interface MountSpec {
	type: "bind" | "volume" | "tmpfs";
	/** Host path (bind) or volume name (volume); none for tmpfs. */
	source?: string;
	target: string;
	readOnly?: boolean;
}

export interface HealthSpec {
	/** ["CMD", prog, args...], ["CMD-SHELL", "command"] or ["NONE"]. */
	test: string[];
	intervalMs?: number;
	timeoutMs?: number;
	retries?: number;
	startPeriodMs?: number;
}

export interface ContainerTemplate {
	/** The image as the user named it. */
	image: string;
	/** Entrypoint override (docker's --entrypoint) and arguments (the command after the image). */
	command?: string[];
	args?: string[];
	env: string[];
	/** Labels of the containers (--container-label); the service's own are in ServiceSpec.labels. */
	labels: Record<string, string>;
	mounts: MountSpec[];
	user?: string;
	workdir?: string;
	hostname?: string;
	stopGracePeriodMs?: number;
	stopSignal?: string;
	readOnly?: boolean;
	capAdd: string[];
	capDrop: string[];
	/** Process resource limits (compose `ulimits`, docker's --ulimit); absent when none. */
	ulimits?: Array<{ name: string; soft: number; hard: number }>;
	healthcheck?: HealthSpec;
}

export interface Resources {
	nanoCpus?: number;
	memoryBytes?: number;
}

export interface RestartPolicy {
	condition: "none" | "on-failure" | "any";
	delayMs: number;
	/** 0: no limit. */
	maxAttempts: number;
	/** The window maxAttempts counts in; 0: forever. */
	windowMs: number;
}

export interface PlatformSpec {
	os: string;
	architecture: string;
	variant?: string;
}

export interface Placement {
	constraints: string[];
	preferences: Array<{ spread: string }>;
	maxReplicasPerNode?: number;
	/** Where the image runs (from the image index at create time); empty: anywhere. */
	platforms: PlatformSpec[];
}

export interface PortSpec {
	protocol: "tcp" | "udp";
	targetPort: number;
	/** Absent: the allocator picks one in 30000-32767 (ingress mode). */
	publishedPort?: number;
	publishMode: "ingress" | "host";
}

/**
 * A secret or config a task gets as a file (Swarm's SecretReference/ConfigReference): the object
 * by id and name, the data `version` it was made with (a new version rolls the service), and the
 * file: `target` (secrets: a name under /run/secrets or an absolute path; configs: an absolute
 * path), owner and mode. In a request `secretId`/`configId` may be "" and `version` 0: the
 * manager resolves them by name.
 */
export interface FileReference {
	target: string;
	/** Owner and group as numbers in strings, as Swarm's API ("0" by default). */
	uid: string;
	gid: string;
	/** Permission bits (0o444 by default). */
	mode: number;
	version: number;
}
export interface SecretReference extends FileReference {
	secretId: string;
	secretName: string;
}
export interface ConfigReference extends FileReference {
	configId: string;
	configName: string;
}

export interface TaskTemplate {
	container: ContainerTemplate;
	resources: { limits: Resources; reservations: Resources };
	restartPolicy: RestartPolicy;
	placement: Placement;
	/** Networks by name or id, as given; the manager resolves them to ids. */
	networks: Array<{ target: string; aliases: string[] }>;
	/** Absent when none (so specs made before secrets existed stay equal). */
	secrets?: SecretReference[];
	configs?: ConfigReference[];
}

/** How a rolling update (or a rollback) proceeds: Swarm's UpdateConfig plus a per-task deadline. */
export interface UpdateConfig {
	/** Tasks updated at once; 0: all. */
	parallelism: number;
	delayMs: number;
	failureAction: "pause" | "continue" | "rollback";
	monitorMs: number;
	maxFailureRatio: number;
	order: "stop-first" | "start-first";
	/** A new task not running (and healthy) this long after it was created is a failure. */
	timeoutMs: number;
}

export const DEFAULT_UPDATE: UpdateConfig = {
	parallelism: 1,
	delayMs: 0,
	failureAction: "pause",
	monitorMs: 5000,
	maxFailureRatio: 0,
	order: "stop-first",
	timeoutMs: 300_000,
};

export interface ServiceSpec {
	name: string;
	labels: Record<string, string>;
	mode: ServiceMode;
	task: TaskTemplate;
	endpoint: { mode: "vip" | "dnsrr"; ports: PortSpec[] };
	update: UpdateConfig;
	rollback: UpdateConfig;
}

export const DEFAULT_RESTART: RestartPolicy = { condition: "any", delayMs: 5000, maxAttempts: 0, windowMs: 0 };

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const MAX_LIST = 256;
const MAX_STRING = 4096;

type Raw = Record<string, unknown>;

class Checker {
	bad(path: string, why: string): never {
		throw new InvalidServiceSpecError(path, why);
	}
	obj(v: unknown, path: string, optional = false): Raw {
		if (v === undefined && optional) return {};
		if (!v || typeof v !== "object" || Array.isArray(v)) this.bad(path, "must be an object");
		return v as Raw;
	}
	str(v: unknown, path: string, max = MAX_STRING): string {
		if (typeof v !== "string") this.bad(path, "must be a string");
		if (v.length > max) this.bad(path, `must be at most ${max} characters`);
		return v;
	}
	optStr(v: unknown, path: string, max = MAX_STRING): string | undefined {
		return v === undefined ? undefined : this.str(v, path, max);
	}
	list(v: unknown, path: string, max = MAX_LIST): unknown[] {
		if (v === undefined) return [];
		if (!Array.isArray(v)) this.bad(path, "must be a list");
		if (v.length > max) this.bad(path, `must have at most ${max} entries`);
		return v;
	}
	strs(v: unknown, path: string): string[] {
		return this.list(v, path).map((x, i) => this.str(x, `${path}[${i}]`));
	}
	int(v: unknown, path: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
		if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max)
			this.bad(path, `must be an integer from ${min} to ${max}`);
		return v as number;
	}
	optInt(v: unknown, path: string, min: number, max?: number): number | undefined {
		return v === undefined ? undefined : this.int(v, path, min, max);
	}
	oneOf<T extends string>(v: unknown, path: string, values: readonly T[], dflt?: T): T {
		if (v === undefined && dflt !== undefined) return dflt;
		if (typeof v !== "string" || !values.includes(v as T)) this.bad(path, `must be one of ${values.join(", ")}`);
		return v as T;
	}
	labels(v: unknown, path: string): Record<string, string> {
		const o = this.obj(v, path, true);
		const keys = Object.keys(o);
		if (keys.length > MAX_LIST) this.bad(path, `at most ${MAX_LIST} labels`);
		for (const k of keys) {
			if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/.test(k)) this.bad(`${path}.${k}`, "is not a valid label key");
			this.str(o[k], `${path}.${k}`, 1024);
		}
		return o as Record<string, string>;
	}
}

function mode(c: Checker, v: unknown): ServiceMode {
	const m = c.obj(v, "mode");
	const kind = c.oneOf(m.kind, "mode.kind", ["replicated", "global", "replicated-job", "global-job"] as const);
	if (kind === "replicated") return { kind, replicas: c.int(m.replicas ?? 1, "mode.replicas", 0, 100_000) };
	if (kind === "replicated-job") {
		const maxConcurrent = c.int(m.maxConcurrent ?? 1, "mode.maxConcurrent", 1, 100_000);
		return {
			kind,
			maxConcurrent,
			totalCompletions: c.int(m.totalCompletions ?? maxConcurrent, "mode.totalCompletions", 1, 100_000),
		};
	}
	return { kind };
}

function mounts(c: Checker, v: unknown): MountSpec[] {
	return c.list(v, "task.container.mounts").map((raw, i) => {
		const at = `task.container.mounts[${i}]`;
		const m = c.obj(raw, at);
		const type = c.oneOf(m.type, `${at}.type`, ["bind", "volume", "tmpfs"] as const, "volume");
		const target = c.str(m.target, `${at}.target`, 1024);
		if (!target.startsWith("/") || target.split("/").includes("..") || target === "/")
			c.bad(`${at}.target`, "must be an absolute path inside the container (not / and no ..)");
		const source = c.optStr(m.source, `${at}.source`, 1024);
		if (type === "bind" && (!source?.startsWith("/") || source.split("/").includes("..")))
			c.bad(`${at}.source`, "a bind mount needs an absolute host path without ..");
		if (type === "volume" && source !== undefined && !NAME.test(source))
			c.bad(`${at}.source`, "a volume name is letters, digits, _ . - (at most 63)");
		if (type === "tmpfs" && source !== undefined) c.bad(`${at}.source`, "a tmpfs mount has no source");
		return { type, target, ...(source ? { source } : {}), ...(m.readOnly ? { readOnly: true } : {}) };
	});
}

function health(c: Checker, v: unknown): HealthSpec | undefined {
	if (v === undefined) return undefined;
	const h = c.obj(v, "task.container.healthcheck");
	const test = c.strs(h.test, "task.container.healthcheck.test");
	if (!["CMD", "CMD-SHELL", "NONE"].includes(test[0] ?? "") || (test[0] !== "NONE" && test.length < 2))
		c.bad("task.container.healthcheck.test", 'must be ["CMD", prog, ...], ["CMD-SHELL", command] or ["NONE"]');
	const ms = (k: string) => c.optInt(h[k], `task.container.healthcheck.${k}`, 0, 86_400_000);
	return {
		test,
		...(h.intervalMs !== undefined ? { intervalMs: ms("intervalMs") } : {}),
		...(h.timeoutMs !== undefined ? { timeoutMs: ms("timeoutMs") } : {}),
		...(h.retries !== undefined ? { retries: c.int(h.retries, "task.container.healthcheck.retries", 0, 1000) } : {}),
		...(h.startPeriodMs !== undefined ? { startPeriodMs: ms("startPeriodMs") } : {}),
	};
}

function updateConfig(c: Checker, v: unknown, path: string): UpdateConfig {
	const u = c.obj(v, path, true);
	const d = DEFAULT_UPDATE;
	const ratio = u.maxFailureRatio ?? d.maxFailureRatio;
	if (typeof ratio !== "number" || !(ratio >= 0 && ratio <= 1)) c.bad(`${path}.maxFailureRatio`, "must be from 0 to 1");
	return {
		parallelism: c.int(u.parallelism ?? d.parallelism, `${path}.parallelism`, 0, 100_000),
		delayMs: c.int(u.delayMs ?? d.delayMs, `${path}.delayMs`, 0, 86_400_000),
		failureAction: c.oneOf(
			u.failureAction,
			`${path}.failureAction`,
			["pause", "continue", "rollback"] as const,
			d.failureAction,
		),
		monitorMs: c.int(u.monitorMs ?? d.monitorMs, `${path}.monitorMs`, 0, 86_400_000),
		maxFailureRatio: ratio,
		order: c.oneOf(u.order, `${path}.order`, ["stop-first", "start-first"] as const, d.order),
		timeoutMs: c.int(u.timeoutMs ?? d.timeoutMs, `${path}.timeoutMs`, 1000, 86_400_000),
	};
}

function resources(c: Checker, v: unknown, path: string): Resources {
	const r = c.obj(v, path, true);
	const nanoCpus = c.optInt(r.nanoCpus, `${path}.nanoCpus`, 1_000_000, 1024e9);
	const memoryBytes = c.optInt(r.memoryBytes, `${path}.memoryBytes`, 6 << 20);
	return { ...(nanoCpus ? { nanoCpus } : {}), ...(memoryBytes ? { memoryBytes } : {}) };
}

function ports(c: Checker, v: unknown): PortSpec[] {
	const list = c.list(v, "endpoint.ports", 64);
	const seen = new Set<string>();
	return list.map((raw, i) => {
		const at = `endpoint.ports[${i}]`;
		const p = c.obj(raw, at);
		const protocol = c.oneOf(p.protocol, `${at}.protocol`, ["tcp", "udp"] as const, "tcp");
		const targetPort = c.int(p.targetPort, `${at}.targetPort`, 1, 65535);
		const publishedPort = c.optInt(p.publishedPort, `${at}.publishedPort`, 1, 65535);
		const publishMode = c.oneOf(p.publishMode, `${at}.publishMode`, ["ingress", "host"] as const, "ingress");
		if (publishedPort !== undefined) {
			const key = `${publishedPort}/${protocol}`;
			if (seen.has(key)) c.bad(at, `published port ${key} is given twice`);
			seen.add(key);
		}
		return { protocol, targetPort, publishMode, ...(publishedPort !== undefined ? { publishedPort } : {}) };
	});
}

const OBJECT_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const ID = /^[a-zA-Z0-9_.-]{0,128}$/;

/** Where a secret's file goes in the container: /run/secrets/TARGET, or TARGET when absolute. */
export const secretPath = (target: string): string => (target.startsWith("/") ? target : `/run/secrets/${target}`);

function fileRefs(
	c: Checker,
	v: unknown,
	kind: "secret" | "config",
): Array<FileReference & { id: string; name: string }> {
	const path = `task.${kind}s`;
	const seen = new Set<string>();
	return c.list(v, path, 64).map((raw, i) => {
		const at = `${path}[${i}]`;
		const o = c.obj(raw, at);
		const name = c.str(o[`${kind}Name`], `${at}.${kind}Name`, 64);
		if (!OBJECT_NAME.test(name)) c.bad(`${at}.${kind}Name`, `"${name}" is not a ${kind} name`);
		const id = c.str(o[`${kind}Id`] ?? "", `${at}.${kind}Id`, 128);
		if (!ID.test(id)) c.bad(`${at}.${kind}Id`, "is not an id");
		const given = c.str(o.target ?? (kind === "secret" ? name : `/${name}`), `${at}.target`, 1024);
		// A config's relative target is from the container's root (as docker takes it on Linux).
		const target = kind === "config" && !given.startsWith("/") && given !== "" ? `/${given}` : given;
		if (target === "" || target.split("/").includes("..") || target.includes("\0"))
			c.bad(`${at}.target`, "must be a file name or a path without ..");
		if (!target.startsWith("/") && target.split("/").includes(""))
			c.bad(`${at}.target`, "must be a file name or a path without empty parts");
		const full = kind === "secret" ? secretPath(target) : target;
		if (full === "/" || full.endsWith("/")) c.bad(`${at}.target`, "must name a file");
		if (seen.has(full)) c.bad(`${at}.target`, `${full} is given twice`);
		seen.add(full);
		const owner = (x: unknown, k: string): string => {
			const s = typeof x === "number" ? String(x) : x === undefined ? "0" : c.str(x, `${at}.${k}`, 10);
			if (!/^\d{1,10}$/.test(s) || Number(s) > 2 ** 32 - 2) c.bad(`${at}.${k}`, "must be a numeric id");
			return s;
		};
		const ref = {
			id,
			name,
			target,
			uid: owner(o.uid, "uid"),
			gid: owner(o.gid, "gid"),
			mode: c.int(o.mode ?? 0o444, `${at}.mode`, 0, 0o777),
			version: c.int(o.version ?? 0, `${at}.version`, 0),
		};
		const known = [`${kind}Id`, `${kind}Name`, "target", "uid", "gid", "mode", "version"];
		for (const k of Object.keys(o)) if (!known.includes(k)) c.bad(`${at}.${k}`, "is not a known field");
		return ref;
	});
}

/** setrlimit(2)'s limits by docker's names (the runtime's ULIMITS). */
const ULIMIT_NAMES =
	"as core cpu data fsize locks memlock msgqueue nice nofile nproc rss rtprio rttime sigpending stack";

function ulimits(c: Checker, v: unknown): Array<{ name: string; soft: number; hard: number }> {
	const seen = new Set<string>();
	return c.list(v, "task.container.ulimits", 16).map((raw, i) => {
		const at = `task.container.ulimits[${i}]`;
		const u = c.obj(raw, at);
		const name = c.oneOf(u.name, `${at}.name`, ULIMIT_NAMES.split(" "));
		if (seen.has(name)) c.bad(`${at}.name`, `${name} is given twice`);
		seen.add(name);
		const soft = c.int(u.soft, `${at}.soft`, -1);
		const hard = c.int(u.hard, `${at}.hard`, -1);
		const n = (x: number) => (x === -1 ? Number.MAX_SAFE_INTEGER : x);
		if (n(soft) > n(hard)) c.bad(`${at}.soft`, `must not be above hard (${hard}); -1 is unlimited`);
		return { name, soft, hard };
	});
}

/** The task template alone (as each task carries it); `path` prefixes the field names. */
function taskTemplate(c: Checker, raw: unknown): TaskTemplate {
	const task = c.obj(raw, "task");
	const ct = c.obj(task.container, "task.container");
	const image = c.str(ct.image, "task.container.image", 512);
	if (!/^[a-zA-Z0-9][a-zA-Z0-9._\-/:@]*$/.test(image))
		c.bad("task.container.image", `"${image}" is not an image reference`);
	const env = c.strs(ct.env, "task.container.env");
	env.forEach((e, i) => {
		if (e.indexOf("=") <= 0) c.bad(`task.container.env[${i}]`, `"${e}" must be NAME=value`);
	});
	const caps = (k: string) =>
		c.strs(ct[k], `task.container.${k}`).map((x, i) => {
			if (!/^(CAP_)?[A-Z_]{2,32}$/i.test(x) && x.toUpperCase() !== "ALL")
				c.bad(`task.container.${k}[${i}]`, `"${x}" is not a capability`);
			return x.toUpperCase() === "ALL" ? "ALL" : `CAP_${x.toUpperCase().replace(/^CAP_/, "")}`;
		});
	const container: ContainerTemplate = {
		image,
		env,
		labels: c.labels(ct.labels, "task.container.labels"),
		mounts: mounts(c, ct.mounts),
		capAdd: caps("capAdd"),
		capDrop: caps("capDrop"),
	};
	if (ct.command !== undefined) container.command = c.strs(ct.command, "task.container.command");
	if (ct.args !== undefined) container.args = c.strs(ct.args, "task.container.args");
	for (const k of ["user", "workdir", "hostname", "stopSignal"] as const) {
		const v = c.optStr(ct[k], `task.container.${k}`, 256);
		if (v !== undefined) container[k] = v;
	}
	if (container.workdir !== undefined && !container.workdir.startsWith("/"))
		c.bad("task.container.workdir", "must be an absolute path");
	if (container.stopSignal !== undefined && !/^(SIG)?[A-Z0-9+-]{2,12}$|^\d{1,2}$/.test(container.stopSignal))
		c.bad("task.container.stopSignal", `"${container.stopSignal}" is not a signal`);
	const grace = c.optInt(ct.stopGracePeriodMs, "task.container.stopGracePeriodMs", 0, 86_400_000);
	if (grace !== undefined) container.stopGracePeriodMs = grace;
	if (ct.readOnly !== undefined) container.readOnly = Boolean(ct.readOnly);
	const hc = health(c, ct.healthcheck);
	if (hc) container.healthcheck = hc;
	const limits = ulimits(c, ct.ulimits);
	if (limits.length) container.ulimits = limits;

	const res = c.obj(task.resources, "task.resources", true);
	const rp = c.obj(task.restartPolicy, "task.restartPolicy", true);
	const restartPolicy: RestartPolicy = {
		condition: c.oneOf(rp.condition, "task.restartPolicy.condition", ["none", "on-failure", "any"] as const, "any"),
		delayMs: c.int(rp.delayMs ?? DEFAULT_RESTART.delayMs, "task.restartPolicy.delayMs", 0, 86_400_000),
		maxAttempts: c.int(rp.maxAttempts ?? 0, "task.restartPolicy.maxAttempts", 0, 1_000_000),
		windowMs: c.int(rp.windowMs ?? 0, "task.restartPolicy.windowMs", 0, 30 * 86_400_000),
	};
	const pl = c.obj(task.placement, "task.placement", true);
	const prefs = c.list(pl.preferences, "task.placement.preferences", 16);
	const platforms = c.list(pl.platforms, "task.placement.platforms", 64);
	const placement: Placement = {
		constraints: c.strs(pl.constraints, "task.placement.constraints"),
		preferences: prefs.map((p, i) => {
			const spread = c.str(
				c.obj(p, `task.placement.preferences[${i}]`).spread,
				`task.placement.preferences[${i}].spread`,
				256,
			);
			if (!/^node\.labels\.[A-Za-z0-9._/-]+$|^engine\.labels\.[A-Za-z0-9._/-]+$/.test(spread))
				c.bad(`task.placement.preferences[${i}].spread`, "must be node.labels.KEY");
			return { spread };
		}),
		platforms: platforms.map((p, i) => {
			const o = c.obj(p, `task.placement.platforms[${i}]`);
			const variant = c.optStr(o.variant, `task.placement.platforms[${i}].variant`, 32);
			return {
				os: c.str(o.os, `task.placement.platforms[${i}].os`, 32),
				architecture: c.str(o.architecture, `task.placement.platforms[${i}].architecture`, 32),
				...(variant ? { variant } : {}),
			};
		}),
	};
	const nets = c.list(task.networks, "task.networks", 16);
	const networks = nets.map((n, i) => {
		const o = c.obj(n, `task.networks[${i}]`);
		return {
			target: c.str(o.target, `task.networks[${i}].target`, 128),
			aliases: c.strs(o.aliases, `task.networks[${i}].aliases`),
		};
	});
	const maxPerNode = c.optInt(pl.maxReplicasPerNode, "task.placement.maxReplicasPerNode", 0, 100_000);
	if (maxPerNode) placement.maxReplicasPerNode = maxPerNode;
	const secrets: SecretReference[] = fileRefs(c, task.secrets, "secret").map(({ id, name, ...f }) => ({
		secretId: id,
		secretName: name,
		...f,
	}));
	const configs: ConfigReference[] = fileRefs(c, task.configs, "config").map(({ id, name, ...f }) => ({
		configId: id,
		configName: name,
		...f,
	}));
	const mountTargets = new Set(container.mounts.map((m) => m.target));
	for (const [i, p] of [...secrets.map((s) => secretPath(s.target)), ...configs.map((x) => x.target)].entries())
		if (mountTargets.has(p))
			c.bad(i < secrets.length ? "task.secrets" : "task.configs", `${p} is also a mount's target`);
	const files = new Set(secrets.map((s) => secretPath(s.target)));
	for (const x of configs) if (files.has(x.target)) c.bad("task.configs", `${x.target} is also a secret's target`);
	return {
		container,
		resources: {
			limits: resources(c, res.limits, "task.resources.limits"),
			reservations: resources(c, res.reservations, "task.resources.reservations"),
		},
		restartPolicy,
		placement,
		networks,
		...(secrets.length ? { secrets } : {}),
		...(configs.length ? { configs } : {}),
	};
}

/** Checks a task template that came from the wire (a task's copy); throws InvalidServiceSpecError. */
export function validateTaskTemplate(raw: unknown): TaskTemplate {
	return taskTemplate(new Checker(), raw);
}

/** Checks a spec that came from a user or the wire; throws InvalidServiceSpecError naming the field. */
export function validateServiceSpec(raw: unknown): ServiceSpec {
	const c = new Checker();
	const s = c.obj(raw, "spec");
	const name = c.str(s.name, "name", 63);
	if (!NAME.test(name)) c.bad("name", "must be letters, digits, _ . - and start with a letter or digit (at most 63)");
	const task = taskTemplate(c, s.task);
	const ep = c.obj(s.endpoint, "endpoint", true);
	const spec: ServiceSpec = {
		name,
		labels: c.labels(s.labels, "labels"),
		mode: mode(c, s.mode ?? { kind: "replicated", replicas: 1 }),
		task,
		endpoint: { mode: c.oneOf(ep.mode, "endpoint.mode", ["vip", "dnsrr"] as const, "vip"), ports: ports(c, ep.ports) },
		update: updateConfig(c, s.update, "update"),
		rollback: updateConfig(c, s.rollback, "rollback"),
	};
	if (spec.endpoint.mode === "dnsrr" && spec.endpoint.ports.some((p) => p.publishMode === "ingress"))
		c.bad("endpoint.ports", "dnsrr services can publish ports only in host mode (as in Swarm)");
	if ((spec.mode.kind === "global" || spec.mode.kind === "global-job") && task.placement.maxReplicasPerNode)
		c.bad("task.placement.maxReplicasPerNode", "applies to replicated services only");
	return spec;
}
