// The single-node container commands (tsswarm run/ps/logs/stop/rm/exec/inspect, tsswarm image ...):
// thin CLI faces over runtime/, printing like docker does.

import { connect } from "node:net";
import { totalmem } from "node:os";
import { socketPath } from "../../agent/api/index.ts";
import {
	type ContainerSpec,
	type ContainerState,
	type HealthcheckSpec,
	type ImageRecord,
	type PullProgress,
	parseCpus,
	parseDuration,
	parseMemory,
	parsePidsLimit,
	parseTime,
	Runtime,
} from "../../runtime/index.ts";
import type { LogsFlags } from "../commands/container.ts";
import { CommandError, UsageError } from "../errors.ts";
import { type ListFlags, type ListSpec, listPrinter, platformText } from "../format.ts";
import { printTable } from "../table.ts";

function insecure(extra: string[] = []): string[] {
	const env = (process.env.TSSWARM_INSECURE_REGISTRIES ?? "").split(",").filter(Boolean);
	return [...env, ...extra];
}

function runtimeFor(o: { dataRoot: string; insecureRegistry?: string[] }): Runtime {
	if (process.getuid?.() !== 0) throw new UsageError("containers need root (mounts, namespaces, cgroups)");
	return new Runtime({ root: o.dataRoot, insecureRegistries: insecure(o.insecureRegistry) });
}

/** One line per layer and state change, like `docker pull` without a terminal. */
function progressPrinter(): (p: PullProgress) => void {
	const last = new Map<string, string>();
	return (p) => {
		if (p.status === "downloading" && last.get(p.layer) === "downloading") return;
		last.set(p.layer, p.status);
		const size = p.total ? ` ${(p.total / 1e6).toFixed(1)} MB` : "";
		const word = {
			exists: "Already exists",
			downloading: `Downloading${size}`,
			extracting: "Extracting",
			done: "Pull complete",
		}[p.status];
		process.stderr.write(`${p.layer}: ${word}\n`);
	};
}

export async function imagePull(
	ref: string,
	o: { platform?: string; insecureRegistry?: string[]; dataRoot: string },
): Promise<void> {
	const rt = runtimeFor(o);
	const t0 = performance.now();
	const img = await rt.images.pull(ref, { platform: o.platform, onProgress: progressPrinter() });
	process.stderr.write(
		`Digest: ${img.manifestDigest}\nStatus: pulled ${img.refs[0]} for ${img.platform.os}/${img.platform.architecture}${img.platform.variant ? `/${img.platform.variant}` : ""} in ${Math.round(performance.now() - t0)} ms\n`,
	);
	process.stdout.write(`${img.refs[0]}\n`);
}

/** image ls: one row per reference (an untagged image: one <none> row), as docker's. */
type ImageRow = { ref: string | undefined; image: ImageRecord };

const globMatch = (pattern: string, s: string) =>
	new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", "[^/]*")}$`).test(s);

export const IMAGE_LS: ListSpec<ImageRow> = {
	fields: {
		ID: (r) => r.image.id.replace(/^sha256:/, ""),
		Reference: (r) => r.ref ?? "<none>",
		Repository: (r) => (r.ref ? r.ref.replace(/:[^:/]+$/, "") : "<none>"),
		Tag: (r) => (r.ref && /:[^:/]+$/.test(r.ref) ? r.ref.replace(/^.*:/, "") : "<none>"),
		Digest: (r) => r.image.manifestDigest,
		Platform: (r) => platformText(r.image.platform),
		Layers: (r) => r.image.layers.length,
		Size: (r) => r.image.layers.reduce((n, l) => n + l.size, 0),
		CreatedAt: (r) => r.image.created,
	},
	ids: { ID: 12 },
	columns: [
		{ header: "REFERENCE", field: "Reference" },
		{ header: "PLATFORM", field: "Platform" },
		{ header: "IMAGE ID", field: "ID" },
		{ header: "LAYERS", field: "Layers" },
	],
	quiet: "ID",
	filters: {
		reference: (r, v) => r.ref !== undefined && (globMatch(v, r.ref) || globMatch(v, r.ref.replace(/:[^:/]+$/, ""))),
		dangling: (r, v) => (v === "true") === (r.image.refs.length === 0),
	},
	json: (r) => ({
		id: r.image.id,
		ref: r.ref,
		refs: r.image.refs,
		platform: r.image.platform,
		layers: r.image.layers.length,
	}),
};

export function imageLs(o: ListFlags & { dataRoot: string }): void {
	const print = listPrinter(IMAGE_LS, o);
	const imgs = runtimeFor(o).images.list();
	print(imgs.flatMap((image) => (image.refs.length ? image.refs : [undefined]).map((ref) => ({ ref, image }))));
}

export async function imageLoad(
	path: string,
	o: { platform?: string; name?: string; dataRoot: string },
): Promise<void> {
	const recs = await runtimeFor(o).images.load(path, { platform: o.platform, name: o.name });
	for (const r of recs) process.stdout.write(`Loaded image: ${r.refs.join(", ")}\n`);
	if (recs.length === 0) throw new UsageError(`${path} holds no image for the requested platform`);
}

/** docker image inspect's shape, from the stored record. */
export function imageInspect(refs: string[], o: { platform?: string; dataRoot: string }): void {
	const rt = runtimeFor(o);
	const out = refs.map((r) => {
		const img = rt.images.resolve(r, { platform: o.platform });
		const cfg = img.config as typeof img.config & { created?: string; author?: string };
		return {
			Id: img.id,
			RepoTags: img.refs,
			RepoDigests: img.refs.map((ref) => `${ref.replace(/:[^:/]+$/, "")}@${img.manifestDigest}`),
			ManifestDigest: img.manifestDigest,
			Created: cfg.created,
			Author: cfg.author,
			Os: img.platform.os,
			Architecture: img.platform.architecture,
			Variant: img.platform.variant,
			Config: img.config.config ?? {},
			RootFS: { Type: "layers", Layers: img.layers.map((l) => l.diffId) },
			Layers: img.layers,
			Size: img.layers.reduce((n, l) => n + l.size, 0),
			Pulled: img.created,
		};
	});
	process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

export function imageRm(refs: string[], o: { force?: boolean; dataRoot: string }): void {
	const rt = runtimeFor(o);
	for (const r of refs) {
		rt.removeImage(r, { force: o.force });
		process.stdout.write(`Untagged: ${r}\n`);
	}
}

export function imagePrune(o: { dataRoot: string }): void {
	const r = runtimeFor(o).pruneImages();
	process.stdout.write(`Deleted ${r.images} untagged images, ${r.blobs} blobs and ${r.layers} layers\n`);
}

function parseVolume(v: string): { source: string; target: string; readonly: boolean } {
	const parts = v.split(":");
	if (
		parts.length < 2 ||
		parts.length > 3 ||
		!parts[0] ||
		!parts[1] ||
		(parts[2] && parts[2] !== "ro" && parts[2] !== "rw")
	) {
		throw new UsageError(`invalid volume "${v}": use SOURCE:TARGET[:ro]`);
	}
	return { source: parts[0], target: parts[1], readonly: parts[2] === "ro" };
}

function seccompFlag(opts: string[] = []): string | undefined {
	let seccomp: string | undefined;
	for (const opt of opts) {
		const m = /^seccomp[=:](.+)$/.exec(opt);
		if (!m)
			throw new UsageError(`--security-opt "${opt}" is not supported: use seccomp=unconfined or seccomp=PROFILE.json`);
		seccomp = m[1];
	}
	return seccomp;
}

function healthFlags(o: Record<string, unknown>): HealthcheckSpec | undefined {
	if (o.healthcheck === false) return { test: ["NONE"] };
	const retries = o.healthRetries as string | undefined;
	if (retries !== undefined && !/^[1-9]\d*$/.test(retries))
		throw new UsageError(`--health-retries must be a positive integer, got "${retries}"`);
	const flags = { interval: o.healthInterval, timeout: o.healthTimeout, startPeriod: o.healthStartPeriod };
	for (const [k, v] of Object.entries(flags)) {
		if (v === undefined) continue;
		try {
			parseDuration(v as string, k);
		} catch {
			const flag = `--health-${k.replace("startPeriod", "start-period")}`;
			throw new UsageError(`${flag} must be a duration such as 30s, 1m30s or 500ms, got "${v}"`);
		}
	}
	const cmd = o.healthCmd as string | undefined;
	if (cmd === undefined && Object.values(flags).every((v) => v === undefined) && retries === undefined)
		return undefined;
	if (cmd === undefined) throw new UsageError("--health-interval/--health-timeout/--health-retries need --health-cmd");
	return {
		test: ["CMD-SHELL", cmd],
		interval: flags.interval as string | undefined,
		timeout: flags.timeout as string | undefined,
		startPeriod: flags.startPeriod as string | undefined,
		retries: retries === undefined ? undefined : Number(retries),
	};
}

/** --memory, --cpus, --pids-limit, --userns checked as the runtime will, before anything is pulled. */
function limitFlags(o: Record<string, unknown>): Pick<ContainerSpec, "userns"> {
	const check = (flag: string, v: unknown, parse: (v: string) => unknown) => {
		if (v === undefined) return;
		try {
			parse(v as string);
		} catch (err) {
			throw new UsageError(`${flag}: ${(err as Error).message}`);
		}
	};
	check("--memory", o.memory, parseMemory);
	check("--cpus", o.cpus, parseCpus);
	check("--pids-limit", o.pidsLimit, parsePidsLimit);
	const userns = o.userns as string | undefined;
	if (userns !== undefined && userns !== "host" && userns !== "remap")
		throw new UsageError(`--userns must be host or remap, got "${userns}"`);
	return { userns: userns as "host" | "remap" | undefined };
}

export async function runContainer(image: string, cmd: string[], o: Record<string, unknown>): Promise<number> {
	if (cmd[0] === "--") cmd = cmd.slice(1);
	// Flags first: a usage error should not wait for a pull.
	const healthcheck = healthFlags(o);
	const seccomp = seccompFlag(o.securityOpt as string[] | undefined);
	const { userns } = limitFlags(o);
	const rt = runtimeFor(o as { dataRoot: string; insecureRegistry?: string[] });
	const platform = o.platform as string | undefined;
	try {
		rt.images.resolve(image, { platform });
	} catch (err) {
		if ((err as { code?: string }).code !== "ERR_IMAGE_NOT_FOUND") throw err;
		process.stderr.write(`Unable to find image '${image}' locally\n`);
		await rt.images.pull(image, { platform, onProgress: progressPrinter() });
	}
	const spec: ContainerSpec = {
		image,
		platform,
		name: o.name as string | undefined,
		cmd: cmd.length > 0 ? cmd : undefined,
		entrypoint: o.entrypoint !== undefined ? [o.entrypoint as string] : undefined,
		env: o.env as string[] | undefined,
		volumes: ((o.volume as string[] | undefined) ?? []).map(parseVolume),
		tmpfs: o.tmpfs as string[] | undefined,
		memory: o.memory as string | undefined,
		cpus: o.cpus as string | undefined,
		pidsLimit: o.pidsLimit as string | undefined,
		readOnly: Boolean(o.readOnly),
		user: o.user as string | undefined,
		workdir: o.workdir as string | undefined,
		network: o.network as string | undefined,
		healthcheck,
		seccomp,
		userns,
		// Detached, the log daemon removes it on exit (nobody here will be waiting).
		autoRemove: Boolean(o.rm && o.detach),
	};
	const c = await rt.prepare(spec);
	if (o.detach) {
		await rt.start(c.id);
		process.stdout.write(`${c.id}\n`);
		return 0;
	}
	// Signals go to the container, as docker run's proxy does: SIGTERM (and SIGINT not from the
	// terminal, which already sent it to runc, and runc forwards) via runc kill; the third one kills.
	// This process stays to collect the exit code and honour --rm.
	let count = 0;
	const forward = (sig: NodeJS.Signals) => {
		count++;
		if (count >= 3) void rt.kill(c.id, "KILL");
		else if (sig !== "SIGINT" || !process.stdin.isTTY) void rt.kill(c.id, sig.slice(3));
	};
	process.on("SIGINT", forward);
	process.on("SIGTERM", forward);
	try {
		return (await rt.runAttached(c.id, "inherit")).code;
	} finally {
		process.off("SIGINT", forward);
		process.off("SIGTERM", forward);
		if (o.rm) await rt.remove(c.id, { force: true });
	}
}

const ago = (iso?: string) => {
	if (!iso) return "";
	const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
	return s < 60
		? `${s} seconds ago`
		: s < 3600
			? `${Math.round(s / 60)} minutes ago`
			: `${Math.round(s / 3600)} hours ago`;
};

/** ps: docker's columns (and the platform), filters id, name, status, ancestor. */
export function psSpec(rt: Runtime): ListSpec<ContainerState> {
	const status = (c: ContainerState) =>
		c.status === "exited"
			? `Exited (${c.exitCode}) ${ago(c.finishedAt)}`
			: c.status === "running"
				? `Up since ${ago(c.startedAt)}${c.healthcheck ? ` (${rt.inspect(c.id).health?.status ?? "starting"})` : ""}`
				: "Created";
	return {
		fields: {
			ID: (c) => c.id,
			Image: (c) => c.image,
			Platform: (c) => c.platform + (c.emulated ? " (qemu)" : ""),
			CreatedAt: (c) => c.created,
			RunningFor: (c) => ago(c.created),
			Status: status,
			State: (c) => c.status,
			Names: (c) => c.name,
			ExitCode: (c) => c.exitCode ?? null,
		},
		ids: { ID: 12 },
		columns: [
			{ header: "CONTAINER ID", field: "ID" },
			{ header: "IMAGE", field: "Image" },
			{ header: "PLATFORM", field: "Platform" },
			{ header: "CREATED", field: "RunningFor" },
			{ header: "STATUS", field: "Status" },
			{ header: "NAME", field: "Names" },
		],
		quiet: "ID",
		filters: {
			id: (c, v) => c.id.startsWith(v),
			name: (c, v) => c.name.includes(v),
			status: (c, v) => c.status === v,
			ancestor: (c, v) => c.image === v || c.imageId === v || c.imageId.replace(/^sha256:/, "").startsWith(v),
		},
	};
}

export function ps(o: ListFlags & { all?: boolean; dataRoot: string }): void {
	const rt = runtimeFor(o);
	const print = listPrinter(psSpec(rt), o);
	print(rt.list({ all: o.all }));
}

export async function logs(c: string, o: LogsFlags): Promise<void> {
	for (const [flag, v] of [
		["--since", o.since],
		["--until", o.until],
	] as const) {
		if (v === undefined) continue;
		try {
			parseTime(v, flag);
		} catch (err) {
			throw new UsageError((err as Error).message);
		}
	}
	const ac = new AbortController();
	const onSig = () => ac.abort();
	process.once("SIGINT", onSig);
	try {
		const entries = runtimeFor(o).logEntries(c, {
			follow: o.follow,
			since: o.since,
			until: o.until,
			tail: o.tail === undefined ? undefined : Number(o.tail),
			signal: ac.signal,
		});
		for await (const e of entries) {
			const line = o.timestamps ? `${e.time} ${e.log}` : e.log;
			(e.stream === "stderr" ? process.stderr : process.stdout).write(line);
		}
	} finally {
		process.off("SIGINT", onSig);
	}
}

export async function stop(cs: string[], o: { time: string; dataRoot: string }): Promise<void> {
	const secs = Number(o.time);
	if (!Number.isFinite(secs) || secs < 0) throw new UsageError(`--time must be a number of seconds, got "${o.time}"`);
	const rt = runtimeFor(o);
	for (const c of cs) {
		await rt.stop(c, { graceMs: secs * 1000 });
		process.stdout.write(`${c}\n`);
	}
}

/** The label a service task's container carries (agent/worker sets it): such containers are the agent's. */
const TASK_LABEL = "com.docker.swarm.task.id";

/** Whether an agent listens on this data root's API socket (it then owns its task containers). */
function agentListening(dataRoot: string): Promise<boolean> {
	return new Promise((resolve) => {
		const sock = connect(socketPath(dataRoot));
		const done = (up: boolean) => {
			sock.destroy();
			resolve(up);
		};
		sock.once("connect", () => done(true));
		sock.once("error", () => done(false));
	});
}

/**
 * docker rm. A task's container is its agent's while the agent runs (it would start the task again);
 * with the agent stopped (`install.sh --uninstall`, a node taken apart) it can be removed too.
 */
export async function rm(cs: string[], o: { force?: boolean; dataRoot: string }): Promise<void> {
	const rt = runtimeFor(o);
	const named = cs.map((c) => ({ c, labels: rt.inspect(c).spec.labels ?? {} }));
	const agentUp = named.some((n) => n.labels[TASK_LABEL]) && (await agentListening(o.dataRoot));
	for (const { c, labels } of named) {
		if (labels[TASK_LABEL] && agentUp)
			throw new CommandError(
				`container ${c} runs task ${labels[TASK_LABEL]} of service ${labels["com.docker.swarm.service.name"] ?? "?"}: the agent owns it while it runs (use tsswarm service scale or service rm)`,
				"ERR_TASK_CONTAINER",
			);
		await rt.remove(c, { force: o.force });
		process.stdout.write(`${c}\n`);
	}
}

export async function exec(c: string, cmd: string[], o: { env?: string[]; dataRoot: string }): Promise<number> {
	return (await runtimeFor(o).exec(c, cmd, { env: o.env })).code;
}

const mib = (n?: number) =>
	n === undefined ? "--" : n >= 1 << 30 ? `${(n / 2 ** 30).toFixed(2)}GiB` : `${(n / 2 ** 20).toFixed(2)}MiB`;

/** docker stats: CPU % over the sampling interval, memory usage / limit, pids; --no-stream prints once. */
export async function stats(cs: string[], o: { stream: boolean; format: string; dataRoot: string }): Promise<void> {
	const rt = runtimeFor(o);
	const ac = new AbortController();
	const onSig = () => ac.abort();
	process.once("SIGINT", onSig);
	try {
		for (;;) {
			const ids = cs.length > 0 ? cs.map((c) => rt.find(c).id) : rt.list().map((c) => c.id);
			const samples = await rt.statsSample(ids, { intervalMs: 1000, signal: ac.signal }).catch((err) => {
				if (ac.signal.aborted) return undefined;
				throw err;
			});
			if (!samples) return;
			if (o.format === "json") process.stdout.write(`${JSON.stringify(samples)}\n`);
			else {
				const rows = [["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]];
				for (const s of samples)
					rows.push([
						s.id.slice(0, 12),
						s.name,
						s.cpuPercent === undefined ? "--" : `${s.cpuPercent.toFixed(2)}%`,
						`${mib(s.memoryBytes)} / ${mib(s.memoryLimit ?? totalmem())}`,
						s.memoryBytes === undefined
							? "--"
							: `${((100 * s.memoryBytes) / (s.memoryLimit ?? totalmem())).toFixed(2)}%`,
						String(s.pids ?? "--"),
					]);
				if (o.stream && process.stdout.isTTY) process.stdout.write("\x1b[2J\x1b[H");
				printTable(rows);
			}
			if (!o.stream) return;
		}
	} finally {
		process.off("SIGINT", onSig);
	}
}

export function inspect(c: string, o: { dataRoot: string }): void {
	process.stdout.write(`${JSON.stringify(runtimeFor(o).inspect(c), null, 2)}\n`);
}
