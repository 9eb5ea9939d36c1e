// The worker: the set of task controllers this node runs, kept equal to what the dispatcher
// assigns (a complete set replaces, changes add, update and remove), persisted so a restart with
// no manager resumes the same tasks, and re-adopting the containers it finds by their labels.
// Status reports of all tasks go out batched, in the order each task made them.
import { EventEmitter } from "node:events";
import { renameSync } from "node:fs";
import { join } from "node:path";
import type { ContainerState } from "../../runtime/index.ts";
import type { AssignedFile, MeshView, NetworkView } from "../dispatch/index.ts";
import { containerName, type Task, type TaskStatus } from "../services/index.ts";
import { LABEL_NODE_ID, LABEL_STOP_GRACE, LABEL_STOP_SIGNAL, LABEL_TASK_ID } from "./container-spec.ts";
import {
	type ControllerHost,
	stopContainer,
	TaskController,
	type WorkerLogger,
	type WorkerRuntime,
} from "./controller.ts";
import { AssignmentsFileError, InvalidAssignmentError, WorkerNotRunningError } from "./errors.ts";
import { NodeFiles, type TmpfsOps } from "./files.ts";
import { type AssignedNetwork, type NetworkingOptions, TaskNetworking } from "./networking.ts";
import { AssignmentFile } from "./persist.ts";

export interface WorkerOptions {
	/** The agent's data dir; the worker keeps DATA/worker/. */
	dataRoot: string;
	nodeId: string;
	runtime: WorkerRuntime;
	logger: WorkerLogger;
	/** The platform this node pulls and runs (os/arch[/variant]); default: the runtime's machine. */
	platform?: string;
	/** Overlay networking for tasks with network attachments; without it such tasks are rejected. */
	network?: NetworkingOptions;
	/** How long reports gather before a batch goes out (default 20 ms). */
	batchMs?: number;
	/** How often a running task's health status is read (default 1 s; each read lists the runtime's containers). */
	healthPollMs?: number;
	/** How the secrets tmpfs (DATA/worker/files) is checked and mounted (tests: their own). */
	tmpfs?: TmpfsOps;
}

/** What the dispatcher sends: the complete set (full) or changes, with the networks the tasks use. */
export interface Assignment {
	full: boolean;
	tasks: Task[];
	networks: AssignedNetwork[];
	/** Ids of tasks no longer assigned (changes only). */
	removed?: string[];
	/** Network views replaced (a full set: all of them); see agent/dispatch. */
	views?: NetworkView[];
	/** The routing mesh, replaced when present. */
	mesh?: MeshView;
	/** Secret and config data the tasks use (kept in memory and on tmpfs only, never persisted). */
	files?: AssignedFile[];
}

export interface StatusReport {
	taskId: string;
	status: TaskStatus;
}

export interface WorkerEvents {
	status: [reports: StatusReport[]];
}

const DESIRED = new Set(["ready", "running", "complete", "shutdown", "remove"]);
const TASK_ID = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$/;
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;

export class Worker extends EventEmitter<WorkerEvents> {
	readonly nodeId: string;
	private readonly o: WorkerOptions;
	private readonly file: AssignmentFile;
	private readonly controllers = new Map<string, TaskController>();
	private nets = new Map<string, AssignedNetwork>();
	private views = new Map<string, NetworkView>();
	private mesh: MeshView = { ports: [] };
	private readonly networking: TaskNetworking | undefined;
	private readonly files: NodeFiles;
	private readonly host: ControllerHost;
	private running = false;
	private isConnected = false;
	private pending: StatusReport[] = [];
	private flushTimer: NodeJS.Timeout | undefined;
	/** Removals and cleanups still going on (stop() waits for them). */
	private readonly background = new Set<Promise<unknown>>();

	constructor(o: WorkerOptions) {
		super();
		this.o = o;
		this.nodeId = o.nodeId;
		this.file = new AssignmentFile(o.dataRoot);
		this.networking = o.network ? new TaskNetworking(o.network, join(o.dataRoot, "worker", "tasks")) : undefined;
		this.files = new NodeFiles(join(o.dataRoot, "worker", "files"), o.logger, o.tmpfs);
		this.host = {
			runtime: o.runtime,
			nodeId: o.nodeId,
			log: o.logger,
			healthPollMs: o.healthPollMs ?? 1000,
			connected: () => this.isConnected,
			networks: () => this.nets,
			containersOf: (id) => this.containers().filter((c) => c.spec.labels?.[LABEL_TASK_ID] === id),
			report: (taskId, status) => this.report(taskId, status),
			files: this.files,
			...(o.platform ? { platform: o.platform } : {}),
			...(this.networking ? { networking: this.networking } : {}),
		};
	}

	/** This node's task containers (any state), as the runtime lists them. */
	private containers(): ContainerState[] {
		return this.o.runtime.list({ all: true }).filter((c) => c.spec.labels?.[LABEL_NODE_ID] === this.nodeId);
	}

	get connected(): boolean {
		return this.isConnected;
	}

	/**
	 * Resumes the persisted assignments: running containers are adopted, exited ones handled as
	 * exits (restarted while no manager is reachable, as their policy says). Containers of tasks not
	 * in the file are left alone until a complete set arrives.
	 */
	async start(): Promise<void> {
		if (this.running) return;
		let saved: ReturnType<AssignmentFile["load"]>;
		try {
			saved = this.file.load(this.nodeId);
		} catch (err) {
			if (!(err instanceof AssignmentsFileError)) throw err;
			// Kept for a look; the tasks come back with the next complete set from a manager.
			renameSync(this.file.path, `${this.file.path}.bad`);
			this.o.logger.error({ err: err.message }, "assignments file unusable; starting with none");
		}
		this.running = true;
		this.nets = new Map((saved?.networks ?? []).map((n) => [n.id, n]));
		this.views = new Map((saved?.views ?? []).map((v) => [v.networkId, v]));
		this.mesh = saved?.mesh ?? { ports: [] };
		const tasks = saved?.tasks ?? [];
		if (this.networking?.reconcileOnStart && (tasks.some((t) => t.networks.length > 0) || this.mesh.ports.length > 0)) {
			await this.networking.reconcile(tasks, this.nets, this.views, this.mesh).catch((err: Error) => {
				this.o.logger.error({ err: err.message }, "overlay reconcile at start failed");
			});
		}
		for (const t of tasks) this.controllers.set(t.id, new TaskController(this.host, t));
		for (const c of this.controllers.values()) c.kick();
		this.o.logger.info({ tasks: tasks.length }, "worker started");
	}

	/**
	 * Lets go of every task without stopping a container; reports made so far go out; state saved.
	 * `stopContainers` (the host shuts down): every task's container is stopped first, all at once,
	 * each with its own grace period, so that the shutdown does not wait out the init's timeout.
	 */
	async stop(o: { stopContainers?: boolean } = {}): Promise<void> {
		if (!this.running) return;
		this.running = false;
		const stopContainer = o.stopContainers === true;
		await Promise.all([...this.controllers.values()].map((c) => c.detach({ stopContainer })));
		await Promise.allSettled([...this.background]);
		this.flush();
		this.controllers.clear();
	}

	/** The dispatcher's session came up (true) or was lost (false): offline, exits are restarted here. */
	setConnected(connected: boolean): void {
		this.isConnected = connected;
	}

	/** The tasks with their latest status (what this node runs). */
	tasks(): Task[] {
		return [...this.controllers.values()].map((c) => c.snapshot);
	}

	/**
	 * A task's log, read from its container on this node (any state); undefined when this node has
	 * no container of that task. Following ends when the container exits or the signal aborts.
	 */
	taskLogs(
		taskId: string,
		o: { follow: boolean; tail?: number; since?: string; signal?: AbortSignal },
	): AsyncIterable<{ stream: "stdout" | "stderr"; time: string; log: string }> | undefined {
		const c = this.containers().find((x) => x.spec.labels?.[LABEL_TASK_ID] === taskId);
		if (!c) return undefined;
		return this.o.runtime.logEntries(c.id, {
			follow: o.follow,
			...(o.tail !== undefined ? { tail: o.tail } : {}),
			...(o.since !== undefined ? { since: o.since } : {}),
			...(o.signal ? { signal: o.signal } : {}),
		});
	}

	/** The latest status of every task, e.g. to send in full when a session starts. */
	statuses(): StatusReport[] {
		return [...this.controllers.values()].map((c) => ({ taskId: c.id, status: c.status }));
	}

	/**
	 * Applies an assignment. It is checked whole first: on InvalidAssignmentError nothing changed.
	 * Removals (stop + remove the container) go on in the background; reports say what happens.
	 */
	async assign(a: Assignment): Promise<void> {
		if (!this.running) throw new WorkerNotRunningError("assign()");
		const nets = a.full ? new Map<string, AssignedNetwork>() : new Map(this.nets);
		for (const n of a.networks ?? []) nets.set(checkNetwork(n).id, n);
		const seen = new Set<string>();
		for (const t of a.tasks) {
			checkTask(t, this.nodeId);
			if (seen.has(t.id)) throw new InvalidAssignmentError(`task ${t.id} is listed twice`);
			seen.add(t.id);
			if (this.networking) this.networking.check(t, nets);
		}
		const removed = new Set(a.full ? [...this.controllers.keys()].filter((id) => !seen.has(id)) : (a.removed ?? []));
		for (const id of removed)
			if (seen.has(id)) throw new InvalidAssignmentError(`task ${id} is both assigned and removed`);

		for (const v of a.views ?? [])
			if (!v || typeof v.networkId !== "string") throw new InvalidAssignmentError("a network view has no networkId");
		const goneNets = new Map(this.nets);
		this.nets = nets;
		const views = a.full ? new Map<string, NetworkView>() : new Map(this.views);
		for (const v of a.views ?? []) views.set(v.networkId, v);
		// Views of networks this node no longer has go with them.
		for (const id of views.keys()) if (!nets.has(id)) views.delete(id);
		this.views = views;
		if (a.mesh) this.mesh = a.mesh;
		else if (a.full) this.mesh = { ports: [] };
		this.files.put(a.files);
		const removals: Promise<unknown>[] = [];
		for (const id of removed) {
			const c = this.controllers.get(id);
			if (!c) continue;
			this.controllers.delete(id);
			removals.push(
				c.destroy().catch((err: Error) => this.o.logger.error({ task: id, err: err.message }, "removing task failed")),
			);
		}
		for (const t of a.tasks) {
			const c = this.controllers.get(t.id);
			if (c) c.update(t);
			else {
				const nc = new TaskController(this.host, t);
				this.controllers.set(t.id, nc);
				nc.kick();
			}
		}
		this.save();
		this.files.gc(this.tasks());
		const programmed = this.networking
			?.setViews(this.views, this.mesh, this.nets)
			.catch((err: Error) => this.o.logger.error({ err: err.message }, "applying network views failed"));
		// Orphans after the removals: a container being removed with its task is not one.
		const cleanup = Promise.allSettled([...removals, programmed])
			.then(() => (a.full ? this.removeOrphans() : undefined))
			.then(() => {
				if (a.full && this.running) this.files.gc(this.tasks(), true);
			})
			.then(() => this.releaseNetworks(goneNets));
		this.background.add(cleanup);
		void cleanup.finally(() => this.background.delete(cleanup));
	}

	/** After a complete set: containers of tasks this node no longer has are stopped and removed. */
	private async removeOrphans(): Promise<void> {
		for (const c of this.containers()) {
			const id = c.spec.labels?.[LABEL_TASK_ID];
			if (!id || this.controllers.has(id)) continue;
			this.o.logger.info({ task: id, container: c.name }, "removing the container of a task no longer assigned");
			try {
				if (c.status === "running") {
					const grace = Number(c.spec.labels?.[LABEL_STOP_GRACE]);
					await stopContainer(
						this.o.runtime,
						c.id,
						c.spec.labels?.[LABEL_STOP_SIGNAL],
						Number.isFinite(grace) ? grace : undefined,
					);
				}
				await this.o.runtime.remove(c.id, { force: true });
			} catch (err) {
				this.o.logger.error({ task: id, err: (err as Error).message }, "removing an orphaned container failed");
			}
		}
	}

	private async releaseNetworks(gone: ReadonlyMap<string, AssignedNetwork>): Promise<void> {
		if (!this.networking || !this.running) return;
		const inUse = new Set(this.tasks().flatMap((t) => t.networks.map((n) => n.networkId)));
		await this.networking.release(inUse, this.nets, gone).catch((err: Error) => {
			this.o.logger.error({ err: err.message }, "removing unused networks failed");
		});
	}

	private report(taskId: string, status: TaskStatus): void {
		this.pending.push({ taskId, status });
		this.flushTimer ??= setTimeout(() => this.flush(), this.o.batchMs ?? 20);
	}

	private flush(): void {
		if (this.flushTimer) clearTimeout(this.flushTimer);
		this.flushTimer = undefined;
		if (this.pending.length === 0) return;
		const batch = this.pending;
		this.pending = [];
		this.save();
		this.emit("status", batch);
	}

	private save(): void {
		try {
			this.file.save({
				nodeId: this.nodeId,
				tasks: this.tasks(),
				networks: [...this.nets.values()],
				views: [...this.views.values()],
				mesh: this.mesh,
			});
		} catch (err) {
			this.o.logger.error({ err: (err as Error).message, path: this.file.path }, "saving assignments failed");
		}
	}
}

function checkNetwork(n: AssignedNetwork): AssignedNetwork {
	const what = `network ${JSON.stringify(n?.id)}`;
	if (!n || typeof n.id !== "string" || n.id === "") throw new InvalidAssignmentError("a network has no id");
	if (!Number.isInteger(n.vni) || n.vni < 1 || n.vni > 0xffffff)
		throw new InvalidAssignmentError(`${what} has no valid vni`);
	if (typeof n.subnet !== "string" || typeof n.gateway !== "string")
		throw new InvalidAssignmentError(`${what} needs a subnet and a gateway`);
	return n;
}

function checkTask(t: Task, nodeId: string): void {
	if (!t || typeof t.id !== "string" || !TASK_ID.test(t.id))
		throw new InvalidAssignmentError(`task id ${JSON.stringify(t?.id)} must be 1-64 letters, digits, _ or -`);
	if (t.nodeId !== undefined && t.nodeId !== nodeId)
		throw new InvalidAssignmentError(`task ${t.id} is for node ${t.nodeId}, this is ${nodeId}`);
	if (typeof t.serviceName !== "string" || !CONTAINER_NAME.test(containerName(t)))
		throw new InvalidAssignmentError(`task ${t.id}: "${containerName(t)}" is not a valid container name`);
	if (!DESIRED.has(t.desiredState))
		throw new InvalidAssignmentError(
			`task ${t.id}: desired state ${JSON.stringify(t.desiredState)} is not one of ${[...DESIRED].join(", ")}`,
		);
	if (
		!t.spec?.container ||
		typeof (t.image || t.spec.container.image) !== "string" ||
		!(t.image || t.spec.container.image)
	)
		throw new InvalidAssignmentError(`task ${t.id} names no image`);
	if (!t.status || typeof t.status.state !== "string") throw new InvalidAssignmentError(`task ${t.id} has no status`);
	if (!Array.isArray(t.networks)) throw new InvalidAssignmentError(`task ${t.id}: networks must be a list`);
}
