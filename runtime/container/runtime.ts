// The container runtime the worker drives: prepare -> start -> wait/stop -> remove, plus inspect,
// logs and list. Each running container has a tiny shim (a detached /bin/sh) that runs
// `runc run` in the foreground and writes the exit code next to the container's state, so
// containers outlive the process that started them and are re-adopted from disk.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import {
	ContainerNotFoundError,
	ContainerRunningError,
	InvalidSpecError,
	NameInUseError,
	RuntimeError,
} from "../errors.ts";
import { formatPlatform, ImageStore, type RegistryOptions } from "../image/index.ts";
import { type Healthcheck, type HealthState, readHealth, resolveHealthcheck } from "./health.ts";
import { parseSize } from "./limits.ts";
import { followLogs, type LogEntry, type LogOptions, parseTime, readLogs } from "./logs.ts";
import { checkRunnable } from "./platform.ts";
import { mountRootfs, unmountRootfs } from "./rootfs.ts";
import { buildOciSpec, type ContainerSpec } from "./spec.ts";

const execFileP = promisify(execFile);

export type ContainerStatus = "created" | "running" | "exited";

export interface ContainerState {
	id: string;
	name: string;
	image: string;
	imageId: string;
	platform: string;
	spec: ContainerSpec;
	created: string;
	startedAt?: string;
	finishedAt?: string;
	status: ContainerStatus;
	exitCode?: number;
	emulated: boolean;
	/** The effective health check (the user's over the image's), if any. */
	healthcheck?: Healthcheck;
}

export interface RuntimeOptions extends RegistryOptions {
	/** Data root (images/, containers/, volumes/, runc/). */
	root: string;
	/** runc (default) or crun. */
	runtime?: string;
	/** Parent cgroup for containers (the lab sets one per node). */
	cgroupParent?: string;
	/** Log rotation defaults (Docker's json-file max-size / max-file): 10 MiB, 3 files. */
	logMaxSize?: number;
	logMaxFiles?: number;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export class Runtime {
	readonly root: string;
	readonly images: ImageStore;
	private readonly bin: string;
	private readonly cgroupParent: string;
	private readonly logMaxSize: number;
	private readonly logMaxFiles: number;

	constructor(o: RuntimeOptions) {
		this.root = o.root;
		this.images = new ImageStore({ ...o, root: join(o.root, "images") });
		this.bin = o.runtime ?? "runc";
		this.cgroupParent = o.cgroupParent ?? process.env.TSSWARM_CGROUP_PARENT ?? "tsswarm";
		this.logMaxSize = o.logMaxSize ?? 10 << 20;
		this.logMaxFiles = o.logMaxFiles ?? 3;
		for (const d of ["containers", "volumes", "runc"]) mkdirSync(join(o.root, d), { recursive: true });
	}

	private dir(id: string): string {
		return join(this.root, "containers", id);
	}

	private runc(...args: string[]): string[] {
		return [this.bin, "--root", join(this.root, "runc"), ...args];
	}

	private save(st: ContainerState): void {
		const p = join(this.dir(st.id), "state.json");
		writeFileSync(`${p}.tmp`, JSON.stringify(st, null, 1));
		renameSync(`${p}.tmp`, p);
	}

	private load(id: string): ContainerState {
		let st: ContainerState;
		try {
			st = JSON.parse(readFileSync(join(this.dir(id), "state.json"), "utf8")) as ContainerState;
		} catch {
			throw new ContainerNotFoundError(id);
		}
		return this.refresh(st);
	}

	/** A running container whose shim wrote an exit code has exited. */
	private refresh(st: ContainerState): ContainerState {
		if (st.status !== "running") return st;
		const f = join(this.dir(st.id), "exitcode");
		if (!existsSync(f)) return st;
		const code = Number(readFileSync(f, "utf8").trim());
		const next: ContainerState = {
			...st,
			status: "exited",
			exitCode: code,
			finishedAt: statSync(f).mtime.toISOString(),
		};
		this.save(next);
		return next;
	}

	/** Finds a container by id, unique id prefix, or name. */
	find(idOrName: string): ContainerState {
		const all = this.list({ all: true });
		const hit =
			all.find((c) => c.id === idOrName || c.name === idOrName) ??
			(idOrName.length >= 3 ? all.filter((c) => c.id.startsWith(idOrName)) : []).at(0);
		if (!hit) throw new ContainerNotFoundError(idOrName);
		return hit;
	}

	list(o: { all?: boolean } = {}): ContainerState[] {
		const out: ContainerState[] = [];
		for (const id of readdirSync(join(this.root, "containers"))) {
			try {
				const st = this.load(id);
				if (o.all || st.status === "running") out.push(st);
			} catch {}
		}
		return out.sort((a, b) => b.created.localeCompare(a.created));
	}

	/** Resolve the image, mount the rootfs and write the OCI bundle; the container is "created". */
	async prepare(spec: ContainerSpec): Promise<ContainerState> {
		const id = randomBytes(32).toString("hex");
		const name = spec.name ?? `c-${id.slice(0, 8)}`;
		if (!NAME_RE.test(name)) throw new InvalidSpecError(`invalid container name "${name}"`);
		const clash = this.list({ all: true }).find((c) => c.name === name);
		if (clash) throw new NameInUseError(name, clash.id);
		const img = this.images.resolve(spec.image, { platform: spec.platform });
		const healthcheck = resolveHealthcheck(spec.healthcheck, img.config.config?.Healthcheck);
		if (spec.logMaxSize !== undefined) parseSize(spec.logMaxSize, "log max size");
		if (spec.logMaxFiles !== undefined && (!Number.isInteger(spec.logMaxFiles) || spec.logMaxFiles < 1))
			throw new InvalidSpecError(`invalid log max files "${spec.logMaxFiles}": use a positive integer`);
		const emulated = checkRunnable(img.platform) === "emulated";
		const dir = this.dir(id);
		mkdirSync(dir, { recursive: true });
		try {
			const rootfs = mountRootfs(img.layerDirs, dir);
			const oci = buildOciSpec({
				spec,
				image: img.config,
				id,
				rootfs,
				cgroupsPath: `/${this.cgroupParent}/${id}`,
				volumeDir: (v) => {
					const p = join(this.root, "volumes", v);
					mkdirSync(p, { recursive: true });
					return p;
				},
			});
			writeFileSync(join(dir, "config.json"), JSON.stringify(oci, null, 1));
			const st: ContainerState = {
				id,
				name,
				image: spec.image,
				imageId: img.id,
				platform: formatPlatform(img.platform),
				spec,
				created: new Date().toISOString(),
				status: "created",
				emulated,
				healthcheck,
			};
			this.save(st);
			return st;
		} catch (err) {
			unmountRootfs(dir);
			rmSync(dir, { recursive: true, force: true });
			throw err;
		}
	}

	/** Start in the background under its shim; output goes to the container's log files. */
	async start(idOrName: string): Promise<ContainerState> {
		const st = this.find(idOrName);
		if (st.status !== "created")
			throw new RuntimeError(`container ${st.name} was already started`, "ERR_ALREADY_STARTED");
		const dir = this.dir(st.id);
		const q = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
		const runc = this.runc("run", "--bundle", dir, st.id).map(q).join(" ");
		const maxSize = st.spec.logMaxSize === undefined ? this.logMaxSize : parseSize(st.spec.logMaxSize, "log max size");
		const maxFiles = st.spec.logMaxFiles ?? this.logMaxFiles;
		const writer = [process.execPath, new URL("./log-writer.ts", import.meta.url).pathname, dir, String(maxSize)];
		// The shim: the FIFOs' write ends go to runc, their read ends (opened here first, so no open
		// blocks and no end is lost if runc finishes before the writer starts) to the log writer on
		// fds 5 and 6; the exit code appears once the writer has written everything.
		const script = [
			`cd ${q(dir)} || exit 1`,
			"rm -f out.fifo err.fifo; mkfifo out.fifo err.fifo || exit 1",
			"exec 3<>out.fifo 4<>err.fifo 5<out.fifo 6<err.fifo",
			`${[...writer, String(maxFiles)].map(q).join(" ")} </dev/null >/dev/null 2>>shim.log 3>&- 4>&- &`,
			"exec 5<&- 6<&-",
			`${runc} </dev/null >&3 2>&4 3>&- 4>&-`,
			"echo $? > exitcode.tmp",
			"exec 3>&- 4>&-",
			"wait",
			"rm -f out.fifo err.fifo",
			"mv exitcode.tmp exitcode",
		].join("\n");
		const shim = spawn("/bin/sh", ["-c", script], { detached: true, stdio: "ignore" });
		shim.unref();
		const next: ContainerState = { ...st, status: "running", startedAt: new Date().toISOString() };
		this.save(next);
		writeFileSync(join(dir, "shim.pid"), String(shim.pid));
		this.startHealth(next);
		// Running once runc reports it (or already exited, for very short commands).
		for (let i = 0; i < 500; i++) {
			if (existsSync(join(dir, "exitcode"))) return this.load(st.id);
			const s = await this.runcState(st.id);
			if (s === "running" || s === "stopped") return this.load(st.id);
			await sleep(5);
		}
		throw new RuntimeError(
			`container ${st.name} did not start within 2.5 s; see its logs (tsswarm logs ${st.name})`,
			"ERR_START_TIMEOUT",
		);
	}

	/** Run in the foreground with the caller's stdio (tsswarm run without -d); returns the exit code. */
	async runAttached(
		idOrName: string,
		stdio: "inherit" | "pipe" = "inherit",
	): Promise<{ code: number; stdout: string; stderr: string }> {
		const st = this.find(idOrName);
		const dir = this.dir(st.id);
		this.save({ ...st, status: "running", startedAt: new Date().toISOString() });
		this.startHealth(st);
		const { code, stdout, stderr } = await spawnCollect(this.runc("run", "--bundle", dir, st.id), stdio);
		writeFileSync(join(dir, "exitcode"), String(code));
		this.save({ ...this.load(st.id), status: "exited", exitCode: code, finishedAt: new Date().toISOString() });
		return { code, stdout, stderr };
	}

	/** The health check loop runs in its own detached process (see health.ts). */
	private startHealth(st: ContainerState): void {
		if (!st.healthcheck) return;
		const dir = this.dir(st.id);
		const runner = new URL("./health-runner.ts", import.meta.url).pathname;
		const args = [runner, JSON.stringify(this.runc()), st.id, dir, JSON.stringify(st.healthcheck)];
		const p = spawn(process.execPath, args, { detached: true, stdio: "ignore" });
		p.unref();
		writeFileSync(join(dir, "health.pid"), String(p.pid));
	}

	/** Ends the health runner now rather than at its next tick; only if the pid is still ours. */
	private stopHealth(id: string): void {
		try {
			const pid = Number(readFileSync(join(this.dir(id), "health.pid"), "utf8"));
			const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
			if (cmdline.includes("health-runner.ts") && cmdline.includes(id)) process.kill(pid, "SIGKILL");
		} catch {}
	}

	private async runcState(id: string): Promise<string | undefined> {
		try {
			const [cmd, ...args] = this.runc("state", id);
			const { stdout } = await execFileP(cmd!, args);
			return (JSON.parse(stdout) as { status: string }).status;
		} catch {
			return undefined;
		}
	}

	async wait(idOrName: string, o: { signal?: AbortSignal } = {}): Promise<number> {
		const id = this.find(idOrName).id;
		for (;;) {
			o.signal?.throwIfAborted();
			const st = this.load(id);
			if (st.status === "exited") return st.exitCode ?? -1;
			if (st.status === "created") throw new RuntimeError(`container ${st.name} was never started`, "ERR_NOT_STARTED");
			await sleep(10);
		}
	}

	/** SIGTERM, then SIGKILL after the grace period (Docker's stop). */
	async stop(idOrName: string, o: { graceMs?: number } = {}): Promise<ContainerState> {
		const st = this.find(idOrName);
		if (st.status !== "running") return st;
		const kill = (sig: string) =>
			execFileP(this.bin, ["--root", join(this.root, "runc"), "kill", "--all", st.id, sig]).catch(() => {});
		await kill("TERM");
		const deadline = Date.now() + (o.graceMs ?? 10_000);
		while (Date.now() < deadline && this.load(st.id).status === "running") await sleep(10);
		if (this.load(st.id).status === "running") {
			await kill("KILL");
			await this.wait(st.id);
		}
		return this.load(st.id);
	}

	async remove(idOrName: string, o: { force?: boolean } = {}): Promise<void> {
		const st = this.find(idOrName);
		if (st.status === "running") {
			if (!o.force) throw new ContainerRunningError(st.id);
			await this.stop(st.id, { graceMs: 0 });
		}
		await execFileP(this.bin, ["--root", join(this.root, "runc"), "delete", "--force", st.id]).catch(() => {});
		this.stopHealth(st.id);
		unmountRootfs(this.dir(st.id));
		rmSync(this.dir(st.id), { recursive: true, force: true });
	}

	/** Run another process in a running container (runc exec); resolves with its exit code. */
	async exec(
		idOrName: string,
		argv: string[],
		o: { stdio?: "inherit" | "pipe"; env?: string[] } = {},
	): Promise<{ code: number; stdout: string; stderr: string }> {
		const st = this.find(idOrName);
		if (st.status !== "running") throw new RuntimeError(`container ${st.name} is not running`, "ERR_NOT_RUNNING");
		if (argv.length === 0) throw new InvalidSpecError("exec needs a command");
		const envArgs = (o.env ?? []).flatMap((e) => ["--env", e]);
		const { code, stdout, stderr } = await spawnCollect(
			this.runc("exec", ...envArgs, st.id, ...argv),
			o.stdio ?? "inherit",
		);
		return { code, stdout, stderr };
	}

	inspect(idOrName: string): ContainerState & { dir: string; health?: HealthState } {
		const st = this.find(idOrName);
		return { ...st, dir: this.dir(st.id), health: st.healthcheck ? readHealth(this.dir(st.id)) : undefined };
	}

	/** The container's output so far, by stream (see logEntries for times, filters and following). */
	logs(idOrName: string, o: { tail?: number } = {}): { stdout: string; stderr: string } {
		const entries = readLogs(this.dir(this.find(idOrName).id), { tail: o.tail });
		const join = (s: string) =>
			entries
				.filter((e) => e.stream === s)
				.map((e) => e.log)
				.join("");
		return { stdout: join("stdout"), stderr: join("stderr") };
	}

	/** Log entries (Docker's logs --since/--until/--tail/--follow); following ends when the container exits. */
	logEntries(idOrName: string, o: LogOptions = {}): AsyncGenerator<LogEntry> {
		const st = this.find(idOrName);
		const dir = this.dir(st.id);
		if (o.since !== undefined) parseTime(o.since, "since");
		if (o.until !== undefined) parseTime(o.until, "until");
		if (o.follow) return followLogs(dir, o, () => this.load(st.id).status !== "running");
		return (async function* () {
			yield* readLogs(dir, o);
		})();
	}

	/** Resource usage from the container's cgroup (v1 or v2). */
	stats(idOrName: string): { memoryBytes?: number; pids?: number; cpuNanos?: number } {
		const st = this.find(idOrName);
		const rel = `${this.cgroupParent}/${st.id}`;
		const read = (p: string) => {
			try {
				return readFileSync(p, "utf8").trim();
			} catch {
				return undefined;
			}
		};
		const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
		if (v2) {
			const cpu = read(`/sys/fs/cgroup/${rel}/cpu.stat`)?.match(/usage_usec (\d+)/)?.[1];
			return {
				memoryBytes: Number(read(`/sys/fs/cgroup/${rel}/memory.current`)) || undefined,
				pids: Number(read(`/sys/fs/cgroup/${rel}/pids.current`)) || undefined,
				cpuNanos: cpu ? Number(cpu) * 1000 : undefined,
			};
		}
		return {
			memoryBytes: Number(read(`/sys/fs/cgroup/memory/${rel}/memory.usage_in_bytes`)) || undefined,
			pids: Number(read(`/sys/fs/cgroup/pids/${rel}/pids.current`)) || undefined,
			cpuNanos: Number(read(`/sys/fs/cgroup/cpuacct/${rel}/cpuacct.usage`)) || undefined,
		};
	}
}

/** Runs argv with the terminal attached ("inherit") or its output collected ("pipe"); signals map to 128+n. */
async function spawnCollect(
	argv: string[],
	stdio: "inherit" | "pipe",
): Promise<{ code: number; stdout: string; stderr: string }> {
	const [cmd, ...args] = argv;
	const child = spawn(cmd!, args, { stdio: stdio === "inherit" ? "inherit" : ["ignore", "pipe", "pipe"] });
	let stdout = "";
	let stderr = "";
	child.stdout?.on("data", (d: Buffer) => {
		stdout += d;
	});
	child.stderr?.on("data", (d: Buffer) => {
		stderr += d;
	});
	const code = await new Promise<number>((resolve, reject) => {
		child.on("error", reject);
		child.on("close", (c, sig) => resolve(c ?? 128 + (sig === "SIGKILL" ? 9 : 15)));
	});
	return { code, stdout, stderr };
}
