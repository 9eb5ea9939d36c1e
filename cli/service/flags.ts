// `service create` flags, docker's names and syntaxes, turned into the API's service spec (units
// parsed here: durations to ms, sizes to bytes, CPUs to nano-CPUs). The agent validates the result
// whole; what can only be wrong in the flags' own syntax is refused here with the flag's name.
import { readFileSync } from "node:fs";
import { UsageError } from "../errors.ts";

const DURATION = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** docker's Go durations: "5s", "1m30s", "500ms"; a bare 0 too. */
export function durationMs(v: string, flag: string): number {
	const s = v.trim();
	if (s === "0") return 0;
	const parts = [...s.matchAll(DURATION)];
	if (parts.length === 0 || parts.map((p) => p[0]).join("") !== s)
		throw new UsageError(`invalid ${flag} "${v}": use a duration such as 5s, 1m30s or 500ms`);
	return Math.round(parts.reduce((ms, p) => ms + Number(p[1]) * UNIT_MS[p[2]!]!, 0));
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function bytes(v: string, flag: string): number {
	const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(v.trim());
	if (!m) throw new UsageError(`invalid ${flag} "${v}": use a size such as 64m or 1g`);
	return Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!);
}

export function nanoCpus(v: string, flag: string): number {
	const n = Number(v);
	if (!/^\d+(\.\d+)?$/.test(v.trim()) || !(n > 0))
		throw new UsageError(`invalid ${flag} "${v}": use CPUs such as 0.5 or 2`);
	return Math.round(n * 1e9);
}

export function int(v: string, flag: string, min = 0): number {
	if (!/^\d+$/.test(v.trim()) || Number(v) < min)
		throw new UsageError(`invalid ${flag} "${v}": use a whole number ≥ ${min}`);
	return Number(v);
}

function keyValue(v: string, flag: string): [string, string] {
	const i = v.indexOf("=");
	if (i <= 0) throw new UsageError(`invalid ${flag} "${v}": use KEY=VALUE`);
	return [v.slice(0, i), v.slice(i + 1)];
}

export const labels = (list: string[], flag: string): Record<string, string> =>
	Object.fromEntries(list.map((v) => (v.includes("=") ? keyValue(v, flag) : [v, ""])));

/** KEY=VALUE lines; blank lines and # comments skipped; a bare KEY takes this process's value. */
export function envFile(path: string): string[] {
	let text: string;
	try {
		text = readFileSync(path, "utf8");
	} catch (err) {
		throw new UsageError(`--env-file ${path}: ${(err as Error).message}`);
	}
	return text
		.split("\n")
		.map((l) => l.trim())
		.filter((l) => l && !l.startsWith("#"))
		.flatMap((l) => (l.includes("=") ? [l] : process.env[l] !== undefined ? [`${l}=${process.env[l]}`] : []));
}

/** docker's CSV syntax: type=bind,source=/a,target=/b,readonly */
export function mount(v: string): Record<string, unknown> {
	const m: Record<string, unknown> = { type: "volume" };
	for (const field of v.split(",")) {
		const [k, val] = field.includes("=") ? keyValue(field, "--mount") : [field, "true"];
		switch (k.toLowerCase()) {
			case "type":
				m.type = val;
				break;
			case "source":
			case "src":
				m.source = val;
				break;
			case "target":
			case "destination":
			case "dst":
				m.target = val;
				break;
			case "readonly":
			case "ro":
				m.readOnly = val !== "false" && val !== "0";
				break;
			default:
				throw new UsageError(`invalid --mount "${v}": unknown field ${k} (use type, source, target, readonly)`);
		}
	}
	if (!m.target) throw new UsageError(`invalid --mount "${v}": target is required`);
	return m;
}

/** "8080:80", "8080:80/udp", "80" (dynamic), or "published=8080,target=80,protocol=udp,mode=host". */
export function publish(v: string): Record<string, unknown> {
	if (v.includes("=")) {
		const p: Record<string, unknown> = {};
		for (const field of v.split(",")) {
			const [k, val] = keyValue(field, "--publish");
			if (k === "published") p.publishedPort = int(val, "--publish published", 1);
			else if (k === "target") p.targetPort = int(val, "--publish target", 1);
			else if (k === "protocol") p.protocol = val;
			else if (k === "mode") p.publishMode = val;
			else throw new UsageError(`invalid --publish "${v}": unknown field ${k}`);
		}
		if (p.targetPort === undefined) throw new UsageError(`invalid --publish "${v}": target is required`);
		return p;
	}
	const m = /^(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(v);
	if (!m) throw new UsageError(`invalid --publish "${v}": use PUBLISHED:TARGET[/PROTOCOL] or the long syntax`);
	return {
		targetPort: Number(m[2]),
		...(m[1] ? { publishedPort: Number(m[1]) } : {}),
		protocol: m[3] ?? "tcp",
	};
}

/** --network NAME or name=NAME,alias=A */
export function network(v: string): { target: string; aliases: string[] } {
	if (!v.includes("=")) return { target: v, aliases: [] };
	const n = { target: "", aliases: [] as string[] };
	for (const field of v.split(",")) {
		const [k, val] = keyValue(field, "--network");
		if (k === "name" || k === "target") n.target = val;
		else if (k === "alias") n.aliases.push(val);
		else throw new UsageError(`invalid --network "${v}": unknown field ${k}`);
	}
	if (!n.target) throw new UsageError(`invalid --network "${v}": name is required`);
	return n;
}

/**
 * --secret / --config: NAME, or docker's CSV source=NAME,target=T,uid=U,gid=G,mode=0400 (mode in
 * octal). The agent resolves the name to the object and its current data version.
 */
export function fileRef(v: string, kind: "secret" | "config"): Record<string, unknown> {
	const flag = `--${kind}`;
	const r: Record<string, unknown> = { [`${kind}Id`]: "" };
	if (!v.includes("=")) r[`${kind}Name`] = v;
	else
		for (const field of v.split(",")) {
			const [k, val] = keyValue(field, flag);
			switch (k.toLowerCase()) {
				case "source":
				case "src":
					r[`${kind}Name`] = val;
					break;
				case "target":
					r.target = val;
					break;
				case "uid":
				case "gid":
					if (!/^\d+$/.test(val)) throw new UsageError(`invalid ${flag} "${v}": ${k} must be a number`);
					r[k.toLowerCase()] = val;
					break;
				case "mode":
					if (!/^0?[0-7]{1,3}$/.test(val))
						throw new UsageError(`invalid ${flag} "${v}": mode must be octal, e.g. 0400`);
					r.mode = Number.parseInt(val, 8);
					break;
				default:
					throw new UsageError(`invalid ${flag} "${v}": unknown field ${k} (use source, target, uid, gid, mode)`);
			}
		}
	if (!r[`${kind}Name`]) throw new UsageError(`invalid ${flag} "${v}": source is required`);
	return r;
}

/** `shell words` of --entrypoint: docker takes a string and splits it like a shell, simply. */
export const words = (v: string): string[] => v.trim().split(/\s+/).filter(Boolean);

export interface CreateFlags {
	name?: string;
	replicas?: string;
	mode: string;
	maxConcurrent?: string;
	env: string[];
	envFile: string[];
	label: string[];
	containerLabel: string[];
	mount: string[];
	network: string[];
	publish: string[];
	secret?: string[];
	config?: string[];
	constraint: string[];
	placementPref: string[];
	replicasMaxPerNode?: string;
	reserveCpu?: string;
	reserveMemory?: string;
	limitCpu?: string;
	limitMemory?: string;
	restartCondition?: string;
	restartDelay?: string;
	restartMaxAttempts?: string;
	restartWindow?: string;
	healthCmd?: string;
	healthInterval?: string;
	healthTimeout?: string;
	healthRetries?: string;
	healthStartPeriod?: string;
	healthcheck?: boolean;
	user?: string;
	workdir?: string;
	entrypoint?: string;
	hostname?: string;
	stopGracePeriod?: string;
	stopSignal?: string;
	readOnly?: boolean;
	capAdd: string[];
	capDrop: string[];
}

/** The raw spec the API validates: every flag given, nothing invented. */
export function specFromFlags(image: string, args: string[], f: CreateFlags): Record<string, unknown> {
	const modes = ["replicated", "global", "replicated-job", "global-job"];
	if (!modes.includes(f.mode)) throw new UsageError(`invalid --mode "${f.mode}": use ${modes.join(", ")}`);
	if (f.replicas !== undefined && f.mode.startsWith("global"))
		throw new UsageError("--replicas applies to replicated services and jobs only");
	const replicas = f.replicas === undefined ? undefined : int(f.replicas, "--replicas");
	const mode =
		f.mode === "replicated"
			? { kind: "replicated", replicas: replicas ?? 1 }
			: f.mode === "replicated-job"
				? {
						kind: "replicated-job",
						maxConcurrent: f.maxConcurrent ? int(f.maxConcurrent, "--max-concurrent", 1) : 1,
						totalCompletions: replicas ?? 1,
					}
				: { kind: f.mode };
	const container: Record<string, unknown> = {
		image,
		env: [...f.envFile.flatMap(envFile), ...f.env.map((e) => (e.includes("=") ? e : `${e}=${process.env[e] ?? ""}`))],
		labels: labels(f.containerLabel, "--container-label"),
		mounts: f.mount.map(mount),
		capAdd: f.capAdd,
		capDrop: f.capDrop,
	};
	if (args.length) container.args = args;
	if (f.entrypoint !== undefined) container.command = words(f.entrypoint);
	for (const k of ["user", "workdir", "hostname", "stopSignal"] as const) if (f[k] !== undefined) container[k] = f[k];
	if (f.stopGracePeriod !== undefined)
		container.stopGracePeriodMs = durationMs(f.stopGracePeriod, "--stop-grace-period");
	if (f.readOnly) container.readOnly = true;
	if (f.healthcheck === false) container.healthcheck = { test: ["NONE"] };
	else if (f.healthCmd !== undefined) {
		container.healthcheck = {
			test: ["CMD-SHELL", f.healthCmd],
			...(f.healthInterval ? { intervalMs: durationMs(f.healthInterval, "--health-interval") } : {}),
			...(f.healthTimeout ? { timeoutMs: durationMs(f.healthTimeout, "--health-timeout") } : {}),
			...(f.healthRetries ? { retries: int(f.healthRetries, "--health-retries") } : {}),
			...(f.healthStartPeriod ? { startPeriodMs: durationMs(f.healthStartPeriod, "--health-start-period") } : {}),
		};
	} else if (f.healthInterval || f.healthTimeout || f.healthRetries || f.healthStartPeriod)
		throw new UsageError(
			"--health-interval, --health-timeout, --health-retries and --health-start-period need --health-cmd",
		);
	const restartPolicy: Record<string, unknown> = {};
	if (f.restartCondition !== undefined) restartPolicy.condition = f.restartCondition;
	if (f.restartDelay !== undefined) restartPolicy.delayMs = durationMs(f.restartDelay, "--restart-delay");
	if (f.restartMaxAttempts !== undefined)
		restartPolicy.maxAttempts = int(f.restartMaxAttempts, "--restart-max-attempts");
	if (f.restartWindow !== undefined) restartPolicy.windowMs = durationMs(f.restartWindow, "--restart-window");
	const resources = {
		limits: {
			...(f.limitCpu ? { nanoCpus: nanoCpus(f.limitCpu, "--limit-cpu") } : {}),
			...(f.limitMemory ? { memoryBytes: bytes(f.limitMemory, "--limit-memory") } : {}),
		},
		reservations: {
			...(f.reserveCpu ? { nanoCpus: nanoCpus(f.reserveCpu, "--reserve-cpu") } : {}),
			...(f.reserveMemory ? { memoryBytes: bytes(f.reserveMemory, "--reserve-memory") } : {}),
		},
	};
	const placement: Record<string, unknown> = {
		constraints: f.constraint,
		preferences: f.placementPref.map((p) => {
			const [k, v] = keyValue(p, "--placement-pref");
			if (k !== "spread") throw new UsageError(`invalid --placement-pref "${p}": only spread=node.labels.KEY`);
			return { spread: v };
		}),
	};
	if (f.replicasMaxPerNode !== undefined)
		placement.maxReplicasPerNode = int(f.replicasMaxPerNode, "--replicas-max-per-node");
	return {
		...(f.name ? { name: f.name } : {}),
		labels: labels(f.label, "--label"),
		mode,
		task: {
			container,
			resources,
			restartPolicy,
			placement,
			networks: f.network.map(network),
			...(f.secret?.length ? { secrets: f.secret.map((x) => fileRef(x, "secret")) } : {}),
			...(f.config?.length ? { configs: f.config.map((x) => fileRef(x, "config")) } : {}),
		},
		endpoint: { ports: f.publish.map(publish) },
	};
}
