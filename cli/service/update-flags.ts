// `service update` flags (docker's names: --env-add/--env-rm, --mount-add/--mount-rm, ...) applied
// to the current spec, and the --update-*/--rollback-* policy flags that create takes too. The
// agent validates the result whole; here only the flags' own syntax is refused, naming the flag.
import { UsageError } from "../errors.ts";
import {
	bytes,
	type CreateFlags,
	durationMs,
	envFile,
	fileRef,
	int,
	labels,
	mount,
	nanoCpus,
	network,
	publish,
	words,
} from "./flags.ts";

export interface PolicyFlags {
	updateParallelism?: string;
	updateDelay?: string;
	updateOrder?: string;
	updateFailureAction?: string;
	updateMonitor?: string;
	updateMaxFailureRatio?: string;
	updateTimeout?: string;
	rollbackParallelism?: string;
	rollbackDelay?: string;
	rollbackOrder?: string;
	rollbackFailureAction?: string;
	rollbackMonitor?: string;
	rollbackMaxFailureRatio?: string;
	rollbackTimeout?: string;
}

/** The update (or rollback) config the flags ask for, over `base` (the current one, or none). */
export function policyFromFlags(
	f: PolicyFlags,
	kind: "update" | "rollback",
	base: Record<string, unknown> = {},
): Record<string, unknown> {
	const get = (k: string) => (f as Record<string, string | undefined>)[`${kind}${k}`];
	const flag = (k: string) => `--${kind}-${k}`;
	const out: Record<string, unknown> = { ...base };
	const p = get("Parallelism");
	if (p !== undefined) out.parallelism = int(p, flag("parallelism"));
	const d = get("Delay");
	if (d !== undefined) out.delayMs = durationMs(d, flag("delay"));
	const o = get("Order");
	if (o !== undefined) {
		if (o !== "stop-first" && o !== "start-first")
			throw new UsageError(`invalid ${flag("order")} "${o}": use stop-first or start-first`);
		out.order = o;
	}
	const a = get("FailureAction");
	if (a !== undefined) {
		const allowed = kind === "update" ? ["pause", "continue", "rollback"] : ["pause", "continue"];
		if (!allowed.includes(a))
			throw new UsageError(`invalid ${flag("failure-action")} "${a}": use ${allowed.join(", ")}`);
		out.failureAction = a;
	}
	const m = get("Monitor");
	if (m !== undefined) out.monitorMs = durationMs(m, flag("monitor"));
	const r = get("MaxFailureRatio");
	if (r !== undefined) {
		const n = Number(r);
		if (!/^\d*\.?\d+$/.test(r.trim()) || n < 0 || n > 1)
			throw new UsageError(`invalid ${flag("max-failure-ratio")} "${r}": use a number from 0 to 1`);
		out.maxFailureRatio = n;
	}
	const tmo = get("Timeout");
	if (tmo !== undefined) out.timeoutMs = durationMs(tmo, flag("timeout"));
	return out;
}

/** The create flags that update takes as they are (same names, same syntax). */
type Shared =
	| "replicas"
	| "maxConcurrent"
	| "capAdd"
	| "capDrop"
	| "replicasMaxPerNode"
	| "reserveCpu"
	| "reserveMemory"
	| "limitCpu"
	| "limitMemory"
	| "restartCondition"
	| "restartDelay"
	| "restartMaxAttempts"
	| "restartWindow"
	| "healthCmd"
	| "healthInterval"
	| "healthTimeout"
	| "healthRetries"
	| "healthStartPeriod"
	| "healthcheck"
	| "user"
	| "workdir"
	| "entrypoint"
	| "hostname"
	| "stopGracePeriod"
	| "stopSignal"
	| "readOnly";

export interface UpdateFlags extends PolicyFlags, Pick<CreateFlags, Shared> {
	image?: string;
	args?: string;
	envAdd: string[];
	envRm: string[];
	labelAdd: string[];
	labelRm: string[];
	containerLabelAdd: string[];
	containerLabelRm: string[];
	mountAdd: string[];
	mountRm: string[];
	networkAdd: string[];
	networkRm: string[];
	publishAdd: string[];
	publishRm: string[];
	constraintAdd: string[];
	constraintRm: string[];
	secretAdd?: string[];
	secretRm?: string[];
	configAdd?: string[];
	configRm?: string[];
	placementPrefAdd: string[];
	placementPrefRm: string[];
	envFile?: string[];
}

type Spec = Record<string, unknown> & {
	labels: Record<string, string>;
	mode: Record<string, unknown> & { kind: string };
	task: {
		container: Record<string, unknown> & {
			env: string[];
			labels: Record<string, string>;
			mounts: Array<{ target: string }>;
			capAdd: string[];
			capDrop: string[];
		};
		resources: { limits: Record<string, unknown>; reservations: Record<string, unknown> };
		restartPolicy: Record<string, unknown>;
		placement: Record<string, unknown> & { constraints: string[]; preferences: Array<{ spread: string }> };
		networks: Array<{ target: string; aliases: string[] }>;
		secrets?: Array<Record<string, unknown>>;
		configs?: Array<Record<string, unknown>>;
	};
	endpoint: Record<string, unknown> & {
		ports: Array<{ targetPort: number; publishedPort?: number; protocol: string }>;
	};
	update: Record<string, unknown>;
	rollback: Record<string, unknown>;
};

const envName = (e: string) => (e.includes("=") ? e.slice(0, e.indexOf("=")) : e);
const labelKey = (l: string) => (l.includes("=") ? l.slice(0, l.indexOf("=")) : l);
const capName = (c: string) => (c.toUpperCase() === "ALL" ? "ALL" : `CAP_${c.toUpperCase().replace(/^CAP_/, "")}`);

/** A port to remove: TARGET[/PROTO] or PUBLISHED:TARGET[/PROTO] (docker's --publish-rm). */
function portMatcher(v: string): (p: { targetPort: number; publishedPort?: number; protocol: string }) => boolean {
	const m = /^(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(v.trim());
	if (!m) throw new UsageError(`invalid --publish-rm "${v}": use TARGET[/PROTOCOL] or PUBLISHED:TARGET[/PROTOCOL]`);
	const published = m[1] ? Number(m[1]) : undefined;
	return (p) =>
		p.targetPort === Number(m[2]) &&
		(m[3] === undefined || p.protocol === m[3]) &&
		(published === undefined || p.publishedPort === published);
}

/** The current spec with the flags applied (a copy); the image is the caller's (it is resolved). */
export function applyUpdateFlags(current: Record<string, unknown>, f: UpdateFlags): Record<string, unknown> {
	const s = structuredClone(current) as Spec;
	const c = s.task.container;
	if (f.image !== undefined) c.image = f.image;
	if (f.args !== undefined) c.args = words(f.args);
	if (f.entrypoint !== undefined) c.command = words(f.entrypoint);
	if (f.replicas !== undefined) {
		const n = int(f.replicas, "--replicas");
		if (s.mode.kind === "replicated") s.mode.replicas = n;
		else if (s.mode.kind === "replicated-job") s.mode.totalCompletions = n;
		else throw new UsageError("--replicas applies to replicated services and jobs only");
	}
	if (f.maxConcurrent !== undefined) {
		if (s.mode.kind !== "replicated-job") throw new UsageError("--max-concurrent applies to replicated jobs only");
		s.mode.maxConcurrent = int(f.maxConcurrent, "--max-concurrent", 1);
	}

	const rmEnv = new Set(f.envRm.map(envName));
	const add = [
		...(f.envFile ?? []).flatMap(envFile),
		...f.envAdd.map((e) => (e.includes("=") ? e : `${e}=${process.env[e] ?? ""}`)),
	];
	const addNames = new Set(add.map(envName));
	c.env = [...c.env.filter((e) => !rmEnv.has(envName(e)) && !addNames.has(envName(e))), ...add];

	for (const k of f.labelRm.map(labelKey)) delete s.labels[k];
	Object.assign(s.labels, labels(f.labelAdd, "--label-add"));
	for (const k of f.containerLabelRm.map(labelKey)) delete c.labels[k];
	Object.assign(c.labels, labels(f.containerLabelAdd, "--container-label-add"));

	const mountRm = new Set(f.mountRm);
	const mountAdd = f.mountAdd.map(mount) as Array<{ target: string }>;
	const mountTargets = new Set(mountAdd.map((m) => m.target));
	c.mounts = [...c.mounts.filter((m) => !mountRm.has(m.target) && !mountTargets.has(m.target)), ...mountAdd];

	const netRm = new Set(f.networkRm);
	const netAdd = f.networkAdd.map(network);
	const netTargets = new Set(netAdd.map((n) => n.target));
	s.task.networks = [...s.task.networks.filter((n) => !netRm.has(n.target) && !netTargets.has(n.target)), ...netAdd];

	// --secret-rm/--config-rm NAME (or id); --*-add replaces a reference to the same object or target.
	for (const kind of ["secret", "config"] as const) {
		const list = s.task[`${kind}s`] ?? [];
		const rm = new Set(f[`${kind}Rm`] ?? []);
		const add = (f[`${kind}Add`] ?? []).map((x) => fileRef(x, kind));
		const name = (r: Record<string, unknown>) => String(r[`${kind}Name`]);
		const addNames = new Set(add.map(name));
		const kept = list.filter((r) => !rm.has(name(r)) && !rm.has(String(r[`${kind}Id`])) && !addNames.has(name(r)));
		const next = [...kept, ...add];
		if (next.length) s.task[`${kind}s`] = next;
		else delete s.task[`${kind}s`];
	}

	const portRm = f.publishRm.map(portMatcher);
	s.endpoint.ports = [
		...s.endpoint.ports.filter((p) => !portRm.some((m) => m(p))),
		...(f.publishAdd.map(publish) as Spec["endpoint"]["ports"]),
	];

	const pl = s.task.placement;
	const conRm = new Set(f.constraintRm.map((x) => x.replace(/\s+/g, "")));
	pl.constraints = [
		...pl.constraints.filter((x) => !conRm.has(x.replace(/\s+/g, ""))),
		...f.constraintAdd.filter((x) => !pl.constraints.includes(x)),
	];
	const prefOf = (p: string, flag: string) => {
		const i = p.indexOf("=");
		if (i <= 0 || p.slice(0, i) !== "spread")
			throw new UsageError(`invalid ${flag} "${p}": only spread=node.labels.KEY`);
		return p.slice(i + 1);
	};
	const prefRm = new Set(f.placementPrefRm.map((p) => prefOf(p, "--placement-pref-rm")));
	pl.preferences = [
		...pl.preferences.filter((p) => !prefRm.has(p.spread)),
		...f.placementPrefAdd.map((p) => ({ spread: prefOf(p, "--placement-pref-add") })),
	];
	if (f.replicasMaxPerNode !== undefined) {
		const n = int(f.replicasMaxPerNode, "--replicas-max-per-node");
		if (n === 0) delete pl.maxReplicasPerNode;
		else pl.maxReplicasPerNode = n;
	}

	const res = s.task.resources;
	if (f.limitCpu !== undefined) res.limits.nanoCpus = nanoCpus(f.limitCpu, "--limit-cpu");
	if (f.limitMemory !== undefined) res.limits.memoryBytes = bytes(f.limitMemory, "--limit-memory");
	if (f.reserveCpu !== undefined) res.reservations.nanoCpus = nanoCpus(f.reserveCpu, "--reserve-cpu");
	if (f.reserveMemory !== undefined) res.reservations.memoryBytes = bytes(f.reserveMemory, "--reserve-memory");

	const rp = s.task.restartPolicy;
	if (f.restartCondition !== undefined) rp.condition = f.restartCondition;
	if (f.restartDelay !== undefined) rp.delayMs = durationMs(f.restartDelay, "--restart-delay");
	if (f.restartMaxAttempts !== undefined) rp.maxAttempts = int(f.restartMaxAttempts, "--restart-max-attempts");
	if (f.restartWindow !== undefined) rp.windowMs = durationMs(f.restartWindow, "--restart-window");

	if (f.healthcheck === false) c.healthcheck = { test: ["NONE"] };
	else if (f.healthCmd !== undefined || f.healthInterval || f.healthTimeout || f.healthRetries || f.healthStartPeriod) {
		const cur = (c.healthcheck as Record<string, unknown> | undefined) ?? {};
		const test = f.healthCmd !== undefined ? ["CMD-SHELL", f.healthCmd] : (cur.test as string[] | undefined);
		if (!test || test[0] === "NONE")
			throw new UsageError(
				"--health-interval, --health-timeout, --health-retries and --health-start-period need a health check (--health-cmd)",
			);
		c.healthcheck = {
			...cur,
			test,
			...(f.healthInterval ? { intervalMs: durationMs(f.healthInterval, "--health-interval") } : {}),
			...(f.healthTimeout ? { timeoutMs: durationMs(f.healthTimeout, "--health-timeout") } : {}),
			...(f.healthRetries ? { retries: int(f.healthRetries, "--health-retries") } : {}),
			...(f.healthStartPeriod ? { startPeriodMs: durationMs(f.healthStartPeriod, "--health-start-period") } : {}),
		};
	}

	for (const k of ["user", "workdir", "hostname", "stopSignal"] as const) if (f[k] !== undefined) c[k] = f[k];
	if (f.stopGracePeriod !== undefined) c.stopGracePeriodMs = durationMs(f.stopGracePeriod, "--stop-grace-period");
	if (f.readOnly) c.readOnly = true;
	const drop = new Set(f.capDrop.map(capName));
	const addCaps = f.capAdd.map(capName);
	c.capAdd = [...c.capAdd.filter((x) => !drop.has(x)), ...addCaps.filter((x) => !c.capAdd.includes(x))];
	c.capDrop = [...c.capDrop.filter((x) => !addCaps.includes(x)), ...[...drop].filter((x) => !c.capDrop.includes(x))];

	s.update = policyFromFlags(f, "update", s.update);
	s.rollback = policyFromFlags(f, "rollback", s.rollback);
	return s;
}
