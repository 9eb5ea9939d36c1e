// One task's life on this node, swarmkit's exec controller: prepare (pull, network, container),
// start, wait, shutdown, remove. Idempotent: it always looks for the task's container first (by its
// task label), so a task already started is adopted, never started twice. Its reports only move up
// the task state ladder; while the node is cut off from managers it restarts an exited task itself,
// following the task's restart policy (offline autonomy), and otherwise just reports the exit.
import { setTimeout as sleep } from "node:timers/promises";
import { ContainerNotFoundError, type ContainerRuntime, type ContainerState } from "../../runtime/index.ts";
import { isTerminal, stateRank, type Task, type TaskState, type TaskStatus } from "../services/index.ts";
import { taskImage, toContainerSpec } from "./container-spec.ts";
import { NetworkingUnavailableError, TaskFileError } from "./errors.ts";
import { fileRefs, type NodeFiles } from "./files.ts";
import type { AssignedNetwork, TaskNetworking } from "./networking.ts";

/** The runtime the worker drives; `kill` (Runtime has it) lets a task's stop signal be sent. */
export type WorkerRuntime = ContainerRuntime & { kill?(id: string, signal?: string): Promise<void> };

export interface WorkerLogger {
	info(obj: object, msg?: string): void;
	warn(obj: object, msg?: string): void;
	error(obj: object, msg?: string): void;
	debug(obj: object, msg?: string): void;
}

/** What a controller needs of its worker. */
export interface ControllerHost {
	runtime: WorkerRuntime;
	nodeId: string;
	platform?: string;
	log: WorkerLogger;
	healthPollMs: number;
	networking?: TaskNetworking;
	/** Secrets and configs on this node's tmpfs; without it, tasks that use any are rejected. */
	files?: NodeFiles;
	connected(): boolean;
	networks(): ReadonlyMap<string, AssignedNetwork>;
	containersOf(taskId: string): ContainerState[];
	report(taskId: string, status: TaskStatus): void;
}

/** A container someone else removed meanwhile is as good as removed. */
const gone = (err: unknown): void => {
	if (!(err instanceof ContainerNotFoundError)) throw err;
};

/** The exit code the runtime gives when the real one was lost. */
const EXIT_UNKNOWN = 255;
const DEFAULT_GRACE_MS = 10_000;

const MESSAGES: Partial<Record<TaskState, string>> = {
	accepted: "accepted",
	preparing: "preparing",
	ready: "prepared",
	starting: "starting",
	running: "started",
	complete: "finished",
	failed: "started",
	rejected: "preparing",
	shutdown: "shutdown",
};

/**
 * docker stop with the task's signal: that signal (SIGTERM by default), SIGKILL once the grace
 * period is over. A signal other than SIGTERM needs the runtime's kill(); without it, SIGTERM.
 */
export async function stopContainer(rt: WorkerRuntime, id: string, signal?: string, graceMs?: number): Promise<void> {
	const grace = graceMs ?? DEFAULT_GRACE_MS;
	const sig = signal?.toUpperCase().replace(/^SIG/, "");
	if (sig && sig !== "TERM" && sig !== "15" && rt.kill) {
		await rt.kill(id, sig);
		const exited = await rt.wait(id, { signal: AbortSignal.timeout(grace) }).then(
			() => true,
			() => false,
		);
		if (!exited) await rt.stop(id, { graceMs: 0 });
		return;
	}
	await rt.stop(id, { graceMs: grace });
}

export class TaskController {
	private task: Task;
	private current: TaskStatus;
	private readonly host: ControllerHost;
	private run: { abort: AbortController; done: Promise<void> } | undefined;
	private chain: Promise<void> = Promise.resolve();
	private closed = false;
	/** When this worker restarted the task itself (offline), for maxAttempts in windowMs. */
	private readonly restarts: number[] = [];

	constructor(host: ControllerHost, task: Task) {
		this.host = host;
		this.task = task;
		this.current = task.status;
	}

	get id(): string {
		return this.task.id;
	}

	/** The task with the status last reported for it. */
	get snapshot(): Task {
		return { ...this.task, status: this.current };
	}

	get status(): TaskStatus {
		return this.current;
	}

	/** A new version of the task from the dispatcher (desired state, spec); starts work if needed. */
	update(task: Task): void {
		this.task = task;
		// The manager's copy of the status may lag ours; ours only moves forward.
		if (stateRank(task.status.state) > stateRank(this.current.state)) this.current = task.status;
		this.kick();
	}

	kick(): void {
		this.chain = this.chain
			.then(() => this.step())
			.catch((err) => this.host.log.error({ task: this.id, err }, "task step failed"));
	}

	private async step(): Promise<void> {
		if (this.closed) return;
		const d = this.task.desiredState;
		if (d === "shutdown" || d === "remove") {
			await this.shutdown(d === "remove");
			return;
		}
		if (this.run || isTerminal(this.current.state)) return;
		const abort = new AbortController();
		const done = this.runTask(abort.signal)
			.catch((err: Error) => {
				if (!abort.signal.aborted) this.fail(err);
			})
			.finally(() => {
				if (this.run?.abort === abort) this.run = undefined;
			});
		this.run = { abort, done };
	}

	private async endRun(): Promise<void> {
		const r = this.run;
		if (!r) return;
		r.abort.abort();
		await r.done;
	}

	/** Desired shutdown (or remove): the container stopped with the task's grace period and signal. */
	private async shutdown(remove: boolean): Promise<void> {
		await this.endRun();
		for (const c of this.host.containersOf(this.id)) {
			if (c.status === "running") await this.stopContainer(c);
			if (remove) await this.removeContainer(c);
		}
		if (remove) await this.host.networking?.detach(this.task, this.host.networks());
		this.host.files?.release(this.id);
		if (!isTerminal(this.current.state)) this.report("shutdown");
	}

	/** The task left the assignment: container stopped and removed, namespace gone; no report. */
	destroy(): Promise<void> {
		this.closed = true;
		const done = this.chain.then(async () => {
			await this.endRun();
			for (const c of this.host.containersOf(this.id)) {
				if (c.status === "running") await this.stopContainer(c);
				await this.removeContainer(c);
			}
			await this.host.networking?.detach(this.task, this.host.networks());
			this.host.files?.release(this.id);
		});
		this.chain = done.catch(() => {});
		return done;
	}

	/**
	 * The agent stops: let go of the task, the container keeps running (re-adopted at the next
	 * start). With `stopContainer` (the host is shutting down) it is stopped first, with the task's
	 * signal and grace period, and kept for the next boot; no report is made.
	 */
	async detach(o: { stopContainer?: boolean } = {}): Promise<void> {
		this.closed = true;
		await this.endRun();
		await this.chain;
		if (!o.stopContainer) return;
		for (const c of this.host.containersOf(this.id)) if (c.status === "running") await this.stopContainer(c);
	}

	private stopContainer(c: ContainerState): Promise<void> {
		const ct = this.task.spec.container;
		return stopContainer(this.host.runtime, c.id, ct.stopSignal, ct.stopGracePeriodMs).catch(gone);
	}

	private removeContainer(c: ContainerState): Promise<void> {
		return this.host.runtime.remove(c.id, { force: true }).catch(gone);
	}

	/** The task's container (the running one if several), or none. */
	private container(): ContainerState | undefined {
		const all = this.host.containersOf(this.id);
		return all.find((c) => c.status === "running") ?? all[0];
	}

	private async runTask(signal: AbortSignal): Promise<void> {
		let c = this.container();
		if (!c && stateRank(this.current.state) >= stateRank("starting")) {
			// Started before, and its container is gone (removed behind our back): an exit with no code.
			await this.afterExit(undefined, EXIT_UNKNOWN, signal, "the task's container is gone");
			return;
		}
		if (!c) {
			this.report("accepted");
			this.report("preparing");
			c = await this.create(signal, true);
			this.report("ready", { containerId: c.id });
		}
		if (c.status === "created") {
			if (this.task.desiredState === "ready") {
				this.report("ready", { containerId: c.id });
				return;
			}
			this.report("starting", { containerId: c.id });
			try {
				c = await this.host.runtime.start(c.id, { signal });
			} catch (err) {
				if (signal.aborted) throw err;
				this.report("failed", { containerId: c.id, err: (err as Error).message });
				return;
			}
		}
		await this.afterStart(c, signal);
	}

	/** Running (or already exited): wait, report the exit, or restart it while offline. */
	private async afterStart(c: ContainerState, signal: AbortSignal): Promise<void> {
		for (;;) {
			this.report("running", { containerId: c.id });
			const code = c.status === "exited" ? (c.exitCode ?? EXIT_UNKNOWN) : await this.waitWithHealth(c, signal);
			const next = await this.afterExit(c, code, signal);
			if (!next) return;
			c = next;
		}
	}

	/** The new container when the task was restarted locally, else undefined (the exit was reported). */
	private async afterExit(
		c: ContainerState | undefined,
		code: number,
		signal: AbortSignal,
		why?: string,
	): Promise<ContainerState | undefined> {
		const restarted = await this.restartLocally(code, signal);
		if (restarted) return restarted;
		let reason = why;
		if (c && !reason) {
			try {
				reason = this.host.runtime.inspect(c.id).reason;
			} catch {}
		}
		if (code === 0) this.report("complete", { exitCode: 0, ...(c ? { containerId: c.id } : {}) });
		else
			this.report("failed", {
				exitCode: code,
				err: `task: non-zero exit (${code})${reason ? `: ${reason}` : ""}`,
				...(c ? { containerId: c.id } : {}),
			});
		return undefined;
	}

	/**
	 * Offline autonomy: with no manager to replace the task, the worker starts it again itself as
	 * its restart policy says (condition, delay, maxAttempts in windowMs). Connected, it does not:
	 * the orchestrator makes a new task.
	 */
	private async restartLocally(code: number, signal: AbortSignal): Promise<ContainerState | undefined> {
		const p = this.task.spec.restartPolicy;
		if (this.host.connected() || p.condition === "none" || (p.condition === "on-failure" && code === 0))
			return undefined;
		const now = Date.now();
		const inWindow = this.restarts.filter((at) => p.windowMs === 0 || now - at < p.windowMs);
		if (p.maxAttempts > 0 && inWindow.length >= p.maxAttempts) return undefined;
		await sleep(p.delayMs, undefined, { signal });
		if (this.host.connected()) return undefined;
		this.restarts.push(Date.now());
		for (const old of this.host.containersOf(this.id)) await this.removeContainer(old);
		const attempt = this.restarts.length;
		this.host.log.info({ task: this.id, code, attempt }, "restarting task locally (no manager reachable)");
		const c = await this.create(signal, false);
		const started = await this.host.runtime.start(c.id, { signal });
		this.current = { ...this.current, health: undefined }; // a new container's checks start over
		this.report("running", {
			containerId: c.id,
			message: `restarted locally after exit ${code} (attempt ${attempt})`,
		});
		return started;
	}

	private async waitWithHealth(c: ContainerState, signal: AbortSignal): Promise<number> {
		const rt = this.host.runtime;
		const poll = () => {
			try {
				const h = rt.inspect(c.id).health?.status;
				if (h && h !== this.current.health && this.current.state === "running") this.report("running", { health: h });
			} catch {}
		};
		const timer = c.healthcheck ? setInterval(poll, this.host.healthPollMs) : undefined;
		try {
			return await rt.wait(c.id, { signal });
		} finally {
			if (timer) clearInterval(timer);
		}
	}

	/** Pull (unless restarting locally), network namespace, prepared container. */
	private async create(signal: AbortSignal, pull: boolean): Promise<ContainerState> {
		const rt = this.host.runtime;
		const image = taskImage(this.task);
		let pullError: Error | undefined;
		if (pull) {
			try {
				await rt.pull(image, { signal, ...(this.host.platform ? { platform: this.host.platform } : {}) });
			} catch (err) {
				if (signal.aborted) throw err;
				// As Docker: a failed pull is not fatal when the image is already here.
				pullError = err as Error;
				this.host.log.warn({ task: this.id, image, err: pullError.message }, "pull failed; trying the local image");
			}
		}
		if (!this.host.files && fileRefs(this.task).length > 0)
			throw new TaskFileError(`task ${this.id} uses secrets or configs, but this worker keeps none`);
		const files = this.host.files?.prepare(this.task) ?? [];
		let net: { netns: string; resolvConf?: string } | undefined;
		if (this.task.networks.length > 0) {
			if (!this.host.networking) throw new NetworkingUnavailableError(this.id);
			net = await this.host.networking.attach(this.task, this.host.networks());
		}
		try {
			return await rt.prepare(
				toContainerSpec(this.task, {
					nodeId: this.host.nodeId,
					...(this.host.platform ? { platform: this.host.platform } : {}),
					...(net ? { network: net.netns, ...(net.resolvConf ? { resolvConf: net.resolvConf } : {}) } : {}),
					...(files.length ? { files } : {}),
				}),
				{ signal },
			);
		} catch (err) {
			if (pullError) (err as Error).message += ` (pulling ${image} failed: ${pullError.message})`;
			throw err;
		}
	}

	private fail(err: Error): void {
		const started = stateRank(this.current.state) >= stateRank("starting");
		this.host.log.warn({ task: this.id, err: err.message }, "task failed");
		this.report(started ? "failed" : "rejected", { err: err.message });
	}

	/** Reports a status; never one lower on the ladder, nor the same one unchanged. */
	private report(state: TaskState, o: Partial<Omit<TaskStatus, "state" | "timestamp">> = {}): void {
		const prev = this.current;
		const r = stateRank(state) - stateRank(prev.state);
		if (r < 0) return;
		const base: Partial<TaskStatus> = r === 0 ? { ...prev } : prev.containerId ? { containerId: prev.containerId } : {};
		const next: TaskStatus = {
			...base,
			...o,
			state,
			message: o.message ?? (r === 0 ? prev.message : (MESSAGES[state] ?? state)),
			timestamp: new Date().toISOString(),
		};
		if (
			r === 0 &&
			next.message === prev.message &&
			next.health === prev.health &&
			next.containerId === prev.containerId &&
			next.err === prev.err
		)
			return;
		this.current = next;
		this.host.report(this.id, next);
	}
}
