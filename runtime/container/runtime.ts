// The container runtime the worker drives: prepare -> start -> wait/stop -> remove, plus inspect,
// logs, stats and exec. Each running container has a shim (shims.ts: a detached shell) that runs
// `runc run` in the foreground and records runc's exit code; the data root's log daemon
// (log-daemon.ts) writes the output to the json-file log and then the exit code next to the
// container's state, so containers outlive the process that started them and are re-adopted from
// disk (by pid + start time of the shim and of runc's init).
import { execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
	chmodSync,
	existsSync,
	type FSWatcher,
	mkdirSync,
	readdirSync,
	readFileSync,
	renameSync,
	rmdirSync,
	rmSync,
	statSync,
	watch,
	writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import {
	AmbiguousIdError,
	ContainerNotFoundError,
	ContainerRunningError,
	ImageInUseError,
	InvalidSpecError,
	NameInUseError,
	RuntimeError,
} from "../errors.ts";
import {
	formatPlatform,
	ImageStore,
	type PullProgress,
	type RegistryOptions,
	type ResolvedImage,
} from "../image/index.ts";
import {
	type CgroupLayout,
	type CgroupStats,
	detectCgroups,
	existingCgroupDirs,
	readCgroupStats,
	removeCgroupDirs,
} from "./cgroups.ts";
import type { ContainerRuntime } from "./contract.ts";
import { type Healthcheck, type HealthState, readHealth, resolveHealthcheck } from "./health.ts";
import { helperCommand } from "./helpers.ts";
import { parseSize } from "./limits.ts";
import { handOff, logdAlive, spawnLogd, writeLogJob } from "./logd-client.ts";
import { followLogs, type LogEntry, type LogOptions, parseTime, readLogs } from "./logs.ts";
import { checkRunnable, checkUserns } from "./platform.ts";
import { procStart } from "./proc.ts";
import { isMounted, mountRootfs, unmountRootfs } from "./rootfs.ts";
import { fillFifoPool, helperEnv, makeFifos, spawnShellShim } from "./shims.ts";
import { buildOciSpec, type ContainerSpec, parseUserns } from "./spec.ts";

const execFileP = promisify(execFile);

export type ContainerStatus = "created" | "running" | "exited";

export interface ContainerState {
	id: string;
	name: string;
	image: string;
	imageId: string;
	/** The manifest digest of the image record: it pins the image and its layers against prune. */
	imageDigest?: string;
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
	/** The process that collects the exit code (the shim, or the caller of runAttached), by pid and start time. */
	shimPid?: number;
	shimStart?: string;
	/** Why the container is in its state when that is not its own doing (e.g. its shim died). */
	reason?: string;
}

/** The exit code given when the real one was lost (Docker uses 255 for "unknown" as well). */
export const EXIT_UNKNOWN = 255;

export interface RuntimeOptions extends RegistryOptions {
	/** Data root (images/, containers/, volumes/, runc/). */
	root: string;
	/** runc (default) or crun. */
	runtime?: string;
	/**
	 * Parent cgroup for containers (the lab sets one per node). One per data root: the start-up
	 * sweep removes empty cgroups under it that belong to no container of this root.
	 */
	cgroupParent?: string;
	/** Log rotation defaults (Docker's json-file max-size / max-file): 10 MiB, 3 files. */
	logMaxSize?: number;
	logMaxFiles?: number;
	/** Where the cgroup hierarchies are mounted (tests point it at fixture trees). */
	cgroupRoot?: string;
	/** Settle containers left by a previous run at construction (default true). */
	sweep?: boolean;
	/**
	 * Make what the next start needs ahead (the FIFOs; after a start, the log daemon), so that
	 * start() runs only the shim and runc. For long-lived callers (the agent); a one-shot CLI leaves
	 * it off (default).
	 */
	prewarmShim?: boolean;
}

/** Quiet time after a start before the spares for the next one are made (see scheduleSpares). */
const SPARE_DELAY_MS = 150;
/** FIFOs made ahead: two per start, for two starts. */
const FIFO_POOL_SIZE = 4;
/** How long after runc's end a container may wait for the log daemon to write its exit code. */
const LOGD_GRACE_MS = 5000;
/** How often stop sends SIGKILL again while the container has not ended (see stop). */
const KILL_RETRY_MS = 250;

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export class Runtime implements ContainerRuntime {
	readonly root: string;
	readonly images: ImageStore;
	private readonly bin: string;
	private readonly cgroupParent: string;
	private readonly logMaxSize: number;
	private readonly logMaxFiles: number;
	/** Cgroup v1, hybrid or v2, detected once. */
	readonly cgroups: CgroupLayout;
	private readonly prewarm: boolean;
	private spareTimer: NodeJS.Timeout | undefined;
	/** When this Runtime last started a log daemon (refresh() does it at most once a second). */
	private logdSpawnedAt = 0;

	constructor(o: RuntimeOptions) {
		this.root = o.root;
		this.images = new ImageStore({ certsDir: join(o.root, "certs.d"), ...o, root: join(o.root, "images") });
		this.bin = o.runtime ?? "runc";
		this.cgroupParent = o.cgroupParent ?? process.env.TSSWARM_CGROUP_PARENT ?? "tsswarm";
		this.logMaxSize = o.logMaxSize ?? 10 << 20;
		this.logMaxFiles = o.logMaxFiles ?? 3;
		this.cgroups = detectCgroups(o.cgroupRoot);
		this.prewarm = o.prewarmShim ?? false;
		for (const d of ["containers", "volumes", "runc"]) mkdirSync(join(o.root, d), { recursive: true });
		if (o.sweep ?? true) this.sweep();
		// FIFOs only: a log daemon is a Node process of its own (~55 MB RSS), and one started here
		// would idle for its IDLE_MS on a node that may run no task for hours. refresh() starts one
		// for a running container left by a previous run; start() hands its container off to one.
		this.scheduleSpares(false);
	}

	private dir(id: string): string {
		return join(this.root, "containers", id);
	}

	private runc(...args: string[]): string[] {
		return [this.bin, "--root", join(this.root, "runc"), ...args];
	}

	/**
	 * runc kill --all; whether runc took it. A container already gone is not an error, nor is one
	 * runc does not know yet (its shim's `runc run` is still creating it): false, and callers that
	 * need the signal to land send it again.
	 */
	private signal(id: string, sig: string): Promise<boolean> {
		const [bin, ...args] = this.runc("kill", "--all", id, sig);
		return execFileP(bin!, args).then(
			() => true,
			() => false,
		);
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

	/**
	 * A running container whose shim wrote an exit code has exited. One whose shim is gone (killed,
	 * or the host rebooted) and whose init process is gone too has exited with an unknown code; a
	 * reused pid does not fool this, the process start time is compared too.
	 */
	private refresh(st: ContainerState): ContainerState {
		if (st.status !== "running") return st;
		const exited = this.exitRecorded(st);
		if (exited) return exited;
		const dir = this.dir(st.id);
		// A log daemon that was killed is started again: it adopts the FIFOs, which kept the output.
		if (existsSync(join(dir, "fifos.open")) && !logdAlive(this.root)) this.ensureLogd();
		const ending = this.runcExit(st.id);
		if (ending !== undefined) {
			// runc has ended; the log daemon is draining the FIFOs and writes exitcode when done.
			if (Date.now() - ending.at < LOGD_GRACE_MS) return st;
			// No daemon could finish it: keep the code runc gave (the log may lack its tail).
			const next: ContainerState = {
				...st,
				status: "exited",
				exitCode: ending.code,
				finishedAt: new Date(ending.at).toISOString(),
			};
			this.save(next);
			this.cleanup(st.id);
			return next;
		}
		if (st.shimPid !== undefined && procStart(st.shimPid) === st.shimStart) return st;
		if (this.initAlive(st.id)) return st;
		// The shim may have written the code and exited between the two checks.
		const late = this.exitRecorded(st);
		if (late) return late;
		const next: ContainerState = {
			...st,
			status: "exited",
			exitCode: EXIT_UNKNOWN,
			finishedAt: new Date().toISOString(),
			reason: "the process that watched the container is gone (killed or host restarted); exit code unknown",
		};
		this.save(next);
		this.cleanup(st.id);
		return next;
	}

	/** runc's exit code as the shim recorded it, before the log daemon confirms it as exitcode. */
	private runcExit(id: string): { code: number; at: number } | undefined {
		const f = join(this.dir(id), "runc.exit");
		try {
			const text = readFileSync(f, "utf8").trim();
			return { code: /^\d+$/.test(text) ? Number(text) : EXIT_UNKNOWN, at: statSync(f).mtimeMs };
		} catch {
			return undefined;
		}
	}

	/** Starts the data root's log daemon unless this Runtime just did (it may still be coming up). */
	private ensureLogd(): void {
		if (Date.now() - this.logdSpawnedAt < 1000) return;
		this.logdSpawnedAt = Date.now();
		spawnLogd(this.root, this.helperEnv());
	}

	private exitRecorded(st: ContainerState): ContainerState | undefined {
		const f = join(this.dir(st.id), "exitcode");
		let text: string;
		try {
			text = readFileSync(f, "utf8").trim();
		} catch {
			return undefined;
		}
		if (!/^\d+$/.test(text)) return undefined; // being written
		const next: ContainerState = {
			...st,
			status: "exited",
			exitCode: Number(text),
			finishedAt: statSync(f).mtime.toISOString(),
		};
		this.save(next);
		return next;
	}

	/** Is the container's init process (as runc recorded it) still the same live process? */
	private initAlive(id: string): boolean {
		try {
			const s = JSON.parse(readFileSync(join(this.root, "runc", id, "state.json"), "utf8")) as {
				init_process_pid?: number;
				init_process_start?: number | string;
			};
			return s.init_process_pid !== undefined && procStart(s.init_process_pid) === String(s.init_process_start);
		} catch {
			return false;
		}
	}

	/** Frees what an exited container may still hold: runc's state, its cgroups, the rootfs mount. */
	private cleanup(id: string, mounts?: string): void {
		if (existsSync(join(this.root, "runc", id))) {
			try {
				const [bin, ...args] = this.runc("delete", "--force", id);
				execFileSync(bin!, args, { stdio: "ignore" });
			} catch {}
		}
		removeCgroupDirs(this.cgroups, `${this.cgroupParent}/${id}`);
		this.stopHealth(id);
		unmountRootfs(this.dir(id), mounts);
	}

	/**
	 * Called once at start: settles containers whose process is gone (cgroups, mounts, runc state),
	 * removes half-prepared container dirs left by a crash and empty cgroups of unknown containers.
	 */
	sweep(): { exited: string[]; removed: string[]; cgroups: string[] } {
		const out = { exited: [] as string[], removed: [] as string[], cgroups: [] as string[] };
		const mounts = readFileSync("/proc/self/mountinfo", "utf8");
		const ids = new Set(readdirSync(join(this.root, "containers")));
		for (const id of ids) {
			const dir = this.dir(id);
			if (!existsSync(join(dir, "state.json"))) {
				// Another process may be preparing it right now: only old leftovers go.
				if (Date.now() - statSync(dir).mtimeMs < 60_000) continue;
				unmountRootfs(dir, mounts);
				rmSync(dir, { recursive: true, force: true });
				ids.delete(id);
				out.removed.push(id);
				continue;
			}
			let st: ContainerState;
			try {
				st = this.load(id);
			} catch {
				continue;
			}
			if (st.status === "exited") {
				this.cleanup(id, mounts);
				out.exited.push(id);
			}
		}
		for (const parent of existingCgroupDirs(this.cgroups, this.cgroupParent)) {
			for (const name of readdirSync(parent, { withFileTypes: true })) {
				if (!name.isDirectory() || ids.has(name.name) || !/^[a-f0-9]{64}$/.test(name.name)) continue;
				try {
					rmdirSync(join(parent, name.name));
					out.cgroups.push(join(parent, name.name));
				} catch {}
			}
		}
		return out;
	}

	/** Finds a container by id, name, or an id prefix that only one container has. */
	find(idOrName: string): ContainerState {
		const all = this.list({ all: true });
		const exact = all.find((c) => c.id === idOrName || c.name === idOrName);
		if (exact) return exact;
		const hits =
			idOrName.length >= 1 && /^[a-f0-9]+$/.test(idOrName) ? all.filter((c) => c.id.startsWith(idOrName)) : [];
		if (hits.length > 1)
			throw new AmbiguousIdError(
				idOrName,
				hits.map((c) => `${c.id.slice(0, 12)} (${c.name})`),
			);
		if (!hits[0]) throw new ContainerNotFoundError(idOrName);
		return hits[0];
	}

	list(o: { all?: boolean } = {}): ContainerState[] {
		const out: ContainerState[] = [];
		for (const id of readdirSync(join(this.root, "containers"))) {
			try {
				const st = this.load(id);
				if (o.all || st.status === "running") out.push(st);
			} catch {}
		}
		// ISO timestamps: code-unit order is time order (localeCompare would load ICU's collator).
		return out.sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
	}

	/** Resolve the image, mount the rootfs and write the OCI bundle; the container is "created". */
	async prepare(spec: ContainerSpec, o: { signal?: AbortSignal } = {}): Promise<ContainerState> {
		o.signal?.throwIfAborted();
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
		const userns = parseUserns(spec.userns);
		if (userns) {
			checkUserns();
			// As Docker with userns-remap: the remapped root must traverse the data root to its rootfs.
			for (const d of [this.root, join(this.root, "containers")]) chmodSync(d, statSync(d).mode | 0o711);
		}
		const dir = this.dir(id);
		mkdirSync(dir, { recursive: true });
		try {
			const rootfs = mountRootfs(img.layerDirs, dir, userns?.hostId);
			const oci = buildOciSpec({
				spec,
				image: img.config,
				id,
				rootfs,
				cgroupsPath: `/${this.cgroupParent}/${id}`,
				loopbackHook: basename(this.bin) !== "runc",
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
				imageDigest: img.manifestDigest,
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

	/** Start in the background under its shim (shims.ts); the log daemon writes the output to its log files. */
	async start(idOrName: string, o: { signal?: AbortSignal } = {}): Promise<ContainerState> {
		const st = this.find(idOrName);
		if (st.status !== "created")
			throw new RuntimeError(`container ${st.name} was already started`, "ERR_ALREADY_STARTED");
		const dir = this.dir(st.id);
		this.ensureRootfs(st);
		if (!existsSync(join(dir, "out.fifo"))) makeFifos(dir, this.fifoPool());
		writeLogJob(dir, {
			logMaxSize: st.spec.logMaxSize === undefined ? this.logMaxSize : parseSize(st.spec.logMaxSize, "log max size"),
			logMaxFiles: st.spec.logMaxFiles ?? this.logMaxFiles,
			// --rm: the log daemon removes the container once the exit code is written, as dockerd
			// does for a detached --rm container, whether or not anyone still watches it.
			autoRemove: Boolean(st.spec.autoRemove),
			runc: this.runc(),
		});
		const shim = spawnShellShim({ dir, runc: this.runc(), id: st.id }, process.env);
		const shimPid = shim.pid!;
		const next: ContainerState = {
			...st,
			status: "running",
			startedAt: new Date().toISOString(),
			shimPid,
			shimStart: procStart(shimPid),
		};
		this.save(next);
		this.startHealth(next);
		this.scheduleSpares();
		// Running once runc has recorded the container's init (or it already exited, for very short
		// commands). runc's state file is read directly: spawning `runc state` costs ~10 ms a poll.
		// The log daemon is told as soon as the shim holds the FIFOs, while runc creates.
		let handed: Promise<void> | undefined;
		const deadline = Date.now() + 5000;
		for (let i = 0; Date.now() < deadline; i++) {
			if (o.signal?.aborted) {
				// The container starts all the same: its output must still reach its log.
				if (!handed) void this.handOffLater(st.id, deadline);
				o.signal.throwIfAborted();
			}
			if (!handed && existsSync(join(dir, "fifos.open"))) handed = handOff(this.root, st.id, this.helperEnv());
			if (!existsSync(dir)) return { ...next, status: "exited" }; // --rm, and already removed
			if (handed && (existsSync(join(this.root, "runc", st.id, "state.json")) || existsSync(join(dir, "runc.exit")))) {
				await handed;
				return this.load(st.id);
			}
			await sleep(i < 20 ? 1 : 5);
		}
		throw new RuntimeError(
			`container ${st.name} did not start within 5 s; see its logs (tsswarm logs ${st.name})`,
			"ERR_START_TIMEOUT",
		);
	}

	/** A start that stopped waiting: hands the container to the log daemon once its shim holds the FIFOs. */
	private async handOffLater(id: string, deadline: number): Promise<void> {
		const dir = this.dir(id);
		while (Date.now() < deadline && existsSync(dir)) {
			if (existsSync(join(dir, "fifos.open"))) return handOff(this.root, id, this.helperEnv());
			await sleep(5);
		}
	}

	private fifoPool(): string {
		return join(this.root, "fifos");
	}

	/**
	 * A long-lived Runtime makes the next start's spares (FIFOs; after a start, the log daemon if
	 * none runs) once starts have been quiet for SPARE_DELAY_MS: a process start right after a start
	 * competes with that container's runc for the two cores (a Node start-up there made starts 15-20
	 * ms slower).
	 */
	private scheduleSpares(logd = true): void {
		if (!this.prewarm) return;
		if (this.spareTimer) clearTimeout(this.spareTimer);
		this.spareTimer = setTimeout(() => {
			this.spareTimer = undefined;
			// The root may have been removed meanwhile (tests, benches): make nothing there again.
			if (!existsSync(join(this.root, "containers"))) return;
			void fillFifoPool(this.fifoPool(), FIFO_POOL_SIZE);
			if (logd && !logdAlive(this.root)) this.ensureLogd();
		}, SPARE_DELAY_MS);
		this.spareTimer.unref();
	}

	/** The shim's and health runner's environment: Node's compile cache, shared with this process. */
	private helperEnv(): NodeJS.ProcessEnv {
		return helperEnv(this.root);
	}

	/** After a host restart the overlay of a created container is gone: mount it again. */
	private ensureRootfs(st: ContainerState): void {
		const dir = this.dir(st.id);
		if (isMounted(join(dir, "rootfs"))) return;
		const img = this.images.resolve(st.imageId, { platform: st.platform });
		mountRootfs(img.layerDirs, dir, parseUserns(st.spec.userns)?.hostId);
	}

	/** Run in the foreground with the caller's stdio (tsswarm run without -d); returns the exit code. */
	async runAttached(
		idOrName: string,
		stdio: "inherit" | "pipe" = "inherit",
		o: { signal?: AbortSignal } = {},
	): Promise<{ code: number; stdout: string; stderr: string }> {
		const st = this.find(idOrName);
		const dir = this.dir(st.id);
		this.ensureRootfs(st);
		// This process collects the exit code: if it dies, refresh() sees it by its pid and start time.
		const running: ContainerState = {
			...st,
			status: "running",
			startedAt: new Date().toISOString(),
			shimPid: process.pid,
			shimStart: procStart(process.pid),
		};
		this.save(running);
		this.startHealth(running);
		// Aborting kills the container; the exit code (137) is still collected.
		const onAbort = () => void this.kill(st.id, "KILL");
		o.signal?.addEventListener("abort", onAbort, { once: true });
		const { code, stdout, stderr } = await spawnCollect(this.runc("run", "--bundle", dir, st.id), stdio).finally(() =>
			o.signal?.removeEventListener("abort", onAbort),
		);
		writeFileSync(join(dir, "exitcode"), String(code));
		this.save({ ...this.load(st.id), status: "exited", exitCode: code, finishedAt: new Date().toISOString() });
		return { code, stdout, stderr };
	}

	/** Pull an image into the store (the worker calls this before prepare). */
	pull(
		ref: string,
		o: { platform?: string; signal?: AbortSignal; onProgress?: (p: PullProgress) => void } = {},
	): Promise<ResolvedImage> {
		return this.images.pull(ref, o);
	}

	/** Containers (any state) whose image is one of these manifest digests. */
	private usersOf(digests: string[]): ContainerState[] {
		const ds = new Set(digests);
		return this.list({ all: true }).filter((c) => c.imageDigest !== undefined && ds.has(c.imageDigest));
	}

	/** docker image rm: refused while a container uses the image, unless forced (the image then stays untagged). */
	removeImage(ref: string, o: { force?: boolean } = {}): number {
		const users = this.usersOf(this.images.digestsOf(ref));
		if (users.length > 0 && !o.force)
			throw new ImageInUseError(
				ref,
				users.map((c) => `${c.id.slice(0, 12)} (${c.name})`),
			);
		const pinned = new Set(this.list({ all: true }).map((c) => c.imageDigest));
		return this.images.remove(ref, { keep: (d) => pinned.has(d) });
	}

	/** docker image prune: frees what no image and no container uses. */
	pruneImages(): { images: number; blobs: number; layers: number } {
		const keep = this.list({ all: true }).flatMap((c) => (c.imageDigest ? [c.imageDigest] : []));
		return this.images.prune({ keep });
	}

	/** Sends a signal to the container's processes (runc kill --all). */
	async kill(idOrName: string, signal = "TERM"): Promise<void> {
		await this.signal(this.find(idOrName).id, signal);
	}

	/** The health check loop runs in its own detached process (see health.ts). */
	private startHealth(st: ContainerState): void {
		if (!st.healthcheck) return;
		const dir = this.dir(st.id);
		const [cmd, ...pre] = helperCommand("health-runner");
		const args = [...pre, JSON.stringify(this.runc()), st.id, dir, JSON.stringify(st.healthcheck)];
		const p = spawn(cmd!, args, { detached: true, stdio: "ignore", env: this.helperEnv() });
		p.unref();
		writeFileSync(join(dir, "health.pid"), String(p.pid));
	}

	/** Ends the health runner now rather than at its next tick; only if the pid is still ours. */
	private stopHealth(id: string): void {
		try {
			const pid = Number(readFileSync(join(this.dir(id), "health.pid"), "utf8"));
			const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
			if (cmdline.includes("health-runner") && cmdline.includes(id)) process.kill(pid, "SIGKILL");
		} catch {}
	}

	/**
	 * Resolves with the exit code. The log daemon's rename of exitcode wakes it at once (inotify on
	 * the container dir); a slower poll also catches a shim that died without recording one.
	 */
	async wait(idOrName: string, o: { signal?: AbortSignal } = {}): Promise<number> {
		const id = this.find(idOrName).id;
		let wake: (() => void) | undefined;
		let watcher: FSWatcher | undefined;
		try {
			// Only the files that end a wait: the log's writes would wake it for every line.
			watcher = watch(this.dir(id), (_, f) => {
				if (f === "exitcode" || f === "state.json" || f === null) wake?.();
			});
			watcher.on("error", () => {});
		} catch {} // gone already: load() below says so
		try {
			for (;;) {
				o.signal?.throwIfAborted();
				const st = this.load(id);
				if (st.status === "exited") return st.exitCode ?? -1;
				if (st.status === "created")
					throw new RuntimeError(`container ${st.name} was never started`, "ERR_NOT_STARTED");
				await new Promise<void>((resolve) => {
					const done = () => {
						clearTimeout(timer);
						o.signal?.removeEventListener("abort", done);
						wake = undefined;
						resolve();
					};
					const timer = setTimeout(done, 100);
					wake = done;
					o.signal?.addEventListener("abort", done, { once: true });
				});
			}
		} finally {
			watcher?.close();
		}
	}

	/** SIGTERM, then SIGKILL after the grace period (Docker's stop). */
	async stop(idOrName: string, o: { graceMs?: number; signal?: AbortSignal } = {}): Promise<ContainerState> {
		o.signal?.throwIfAborted();
		const st = this.find(idOrName);
		if (st.status !== "running") return st;
		// A stop during a start (the shim runs, runc has not created the container yet) misses with
		// its first signal: TERM is sent again until runc takes it, KILL until the container ends.
		const deadline = Date.now() + (o.graceMs ?? 10_000);
		let termed = await this.signal(st.id, "TERM");
		for (let i = 1; Date.now() < deadline && this.load(st.id).status === "running"; i++) {
			await sleep(10, undefined, o);
			if (!termed && i % 10 === 0) termed = await this.signal(st.id, "TERM");
		}
		while (this.load(st.id).status === "running") {
			await this.signal(st.id, "KILL");
			const retry = AbortSignal.timeout(KILL_RETRY_MS);
			try {
				await this.wait(st.id, { signal: o.signal ? AbortSignal.any([o.signal, retry]) : retry });
			} catch (err) {
				if (o.signal?.aborted || !retry.aborted) throw err;
			}
		}
		return this.load(st.id);
	}

	async remove(idOrName: string, o: { force?: boolean; signal?: AbortSignal } = {}): Promise<void> {
		o.signal?.throwIfAborted();
		const st = this.find(idOrName);
		if (st.status === "running") {
			if (!o.force) throw new ContainerRunningError(st.id);
			await this.stop(st.id, { graceMs: 0, signal: o.signal });
		}
		// `runc run` deletes its container when it ends; a runc start costs ~10 ms, so only if needed.
		if (existsSync(join(this.root, "runc", st.id))) {
			const [bin, ...args] = this.runc("delete", "--force", st.id);
			await execFileP(bin!, args).catch(() => {});
		}
		this.stopHealth(st.id);
		unmountRootfs(this.dir(st.id));
		rmSync(this.dir(st.id), { recursive: true, force: true });
	}

	/** Run another process in a running container (runc exec); resolves with its exit code. */
	async exec(
		idOrName: string,
		argv: string[],
		o: { stdio?: "inherit" | "pipe"; env?: string[]; signal?: AbortSignal } = {},
	): Promise<{ code: number; stdout: string; stderr: string }> {
		o.signal?.throwIfAborted();
		const st = this.find(idOrName);
		if (st.status !== "running") throw new RuntimeError(`container ${st.name} is not running`, "ERR_NOT_RUNNING");
		if (argv.length === 0) throw new InvalidSpecError("exec needs a command");
		const envArgs = (o.env ?? []).flatMap((e) => ["--env", e]);
		const { code, stdout, stderr } = await spawnCollect(
			this.runc("exec", ...envArgs, st.id, ...argv),
			o.stdio ?? "inherit",
			o.signal,
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

	/** Resource usage from the container's cgroup (v1, hybrid or v2, as detected at start). */
	stats(idOrName: string): CgroupStats & { id: string; name: string; at: number } {
		const st = this.find(idOrName);
		const at = performance.now();
		return { id: st.id, name: st.name, at, ...readCgroupStats(this.cgroups, `${this.cgroupParent}/${st.id}`) };
	}

	/**
	 * Two samples `intervalMs` apart, as docker stats takes them: CPU % of one CPU (100 = one core
	 * busy) over the interval, and the latest memory and pids. Containers that end meanwhile drop out.
	 */
	async statsSample(
		ids: string[],
		o: { intervalMs?: number; signal?: AbortSignal } = {},
	): Promise<Array<CgroupStats & { id: string; name: string; cpuPercent?: number }>> {
		const first = new Map(ids.map((id) => [id, this.stats(id)]));
		await sleep(o.intervalMs ?? 1000, undefined, { signal: o.signal });
		const out: Array<CgroupStats & { id: string; name: string; cpuPercent?: number }> = [];
		for (const [id, a] of first) {
			let b: ReturnType<Runtime["stats"]>;
			try {
				b = this.stats(id);
			} catch {
				continue;
			}
			const cpuPercent =
				a.cpuNanos !== undefined && b.cpuNanos !== undefined
					? (100 * (b.cpuNanos - a.cpuNanos)) / ((b.at - a.at) * 1e6)
					: undefined;
			out.push({ ...b, cpuPercent });
		}
		return out;
	}

	/** The cgroup directories a container has (none once it is removed): for cleanup checks. */
	cgroupDirsOf(id: string): string[] {
		return existingCgroupDirs(this.cgroups, `${this.cgroupParent}/${id}`);
	}
}

/** Runs argv with the terminal attached ("inherit") or its output collected ("pipe"); signals map to 128+n. */
async function spawnCollect(
	argv: string[],
	stdio: "inherit" | "pipe",
	signal?: AbortSignal,
): Promise<{ code: number; stdout: string; stderr: string }> {
	const [cmd, ...args] = argv;
	const child = spawn(cmd!, args, { stdio: stdio === "inherit" ? "inherit" : ["ignore", "pipe", "pipe"], signal });
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
