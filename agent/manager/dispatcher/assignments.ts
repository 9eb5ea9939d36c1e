// What one worker session has been sent, so a change in the store becomes the smallest delta:
// a task is sent again only when something other than its observed status changed (the worker
// wrote that status itself), a network when its record changed, and a network's view (views.ts)
// whole when it differs from the one this session has.
import { pack } from "msgpackr";
import {
	type AssignedFile,
	type AssignedNetwork,
	type AssignmentsMessage,
	LIMITS,
	type MeshView,
	type NetworkView,
} from "../../dispatch/index.ts";
import type { Task } from "../../services/index.ts";
import type { DispatchStore } from "./store.ts";
import type { NetworkViews } from "./views.ts";

/** The task as the worker needs to know it: everything but the status it reports. */
const stableKey = (t: Task): string => JSON.stringify({ ...t, status: undefined });

export class SessionAssignments {
	readonly nodeId: string;
	private readonly store: DispatchStore;
	/** Task id -> the stable key last sent. */
	readonly sent = new Map<string, string>();
	private readonly nets = new Map<string, string>();
	private readonly dirtyTasks = new Set<string>();
	private readonly dirtyNets = new Set<string>();
	private readonly views: NetworkViews;
	/** Task id -> the networks it uses (of the tasks sent). */
	private readonly taskNets = new Map<string, string[]>();
	/** Network id -> the key of the view last sent. */
	private readonly sentViews = new Map<string, string>();
	private sentMesh = "";
	/** "kind:id:version" of the secret and config data this session has sent (a version never changes). */
	private readonly sentFiles = new Set<string>();
	private viewsDirty = false;

	constructor(nodeId: string, store: DispatchStore, views: NetworkViews) {
		this.nodeId = nodeId;
		this.store = store;
		this.views = views;
	}

	/** Some view or the mesh changed: the next delta compares this session's. */
	touchViews(): void {
		this.viewsDirty = true;
	}

	private track(t: Task): void {
		this.sent.set(t.id, stableKey(t));
		this.taskNets.set(
			t.id,
			(t.networks ?? []).map((a) => a.networkId),
		);
	}

	/** The networks this node carries: its tasks', and ingress for the mesh when ports are published. */
	private wanted(): Set<string> {
		const ids = new Set([...this.taskNets.values()].flat());
		const mesh = this.views.meshNetwork;
		if (mesh) ids.add(mesh);
		return ids;
	}

	/** Views (and the mesh) this session does not have in their current form. */
	private viewChanges(all: boolean): { views: NetworkView[]; mesh?: MeshView } {
		this.viewsDirty = false;
		const wanted = this.wanted();
		for (const id of [...this.sentViews.keys()]) if (!wanted.has(id)) this.sentViews.delete(id);
		const views: NetworkView[] = [];
		for (const id of wanted) {
			const key = this.views.key(id);
			const v = this.views.view(id);
			if (!key || !v || (!all && this.sentViews.get(id) === key)) continue;
			this.sentViews.set(id, key);
			views.push(v);
		}
		const mesh = this.views.mesh(this.nodeId);
		const key = JSON.stringify(mesh);
		if (!all && key === this.sentMesh) return { views };
		this.sentMesh = key;
		return { views, mesh };
	}

	hasNetwork(id: string): boolean {
		return this.nets.has(id);
	}

	touchTask(id: string): void {
		this.dirtyTasks.add(id);
	}

	touchNetwork(id: string): void {
		this.dirtyNets.add(id);
	}

	get dirty(): boolean {
		return this.dirtyTasks.size > 0 || this.dirtyNets.size > 0 || this.viewsDirty;
	}

	/** Everything this node should have now; what was sent before is forgotten. */
	full(): AssignmentsMessage[] {
		this.sent.clear();
		this.nets.clear();
		this.taskNets.clear();
		this.sentViews.clear();
		this.sentFiles.clear();
		this.dirtyTasks.clear();
		this.dirtyNets.clear();
		const tasks: Task[] = [];
		const removed: string[] = [];
		for (const t of this.store.tasksOf(this.nodeId)) {
			if (t.desiredState === "remove") removed.push(t.id);
			else {
				tasks.push(t);
				this.track(t);
			}
		}
		const networks = this.networksFor(tasks, true);
		const { views, mesh } = this.viewChanges(true);
		return chunk(true, tasks, removed, networks, views, mesh, this.filesFor(tasks));
	}

	/** The changes since the last call (empty when nothing the worker needs changed). */
	delta(): AssignmentsMessage[] {
		const tasks: Task[] = [];
		const removed: string[] = [];
		for (const id of this.dirtyTasks) {
			const t = this.store.task(id)?.value;
			if (t && t.nodeId === this.nodeId && t.desiredState !== "remove") {
				const key = stableKey(t);
				if (this.sent.get(id) === key) continue;
				this.track(t);
				tasks.push(t);
			} else if (this.sent.delete(id)) {
				this.taskNets.delete(id);
				removed.push(id);
			}
		}
		this.dirtyTasks.clear();
		const networks = this.networksFor(tasks, false);
		for (const id of this.dirtyNets) {
			const n = this.store.network(id);
			const key = n && JSON.stringify(n);
			if (n && key && this.nets.get(id) !== key && !networks.some((x) => x.id === id)) {
				this.nets.set(id, key);
				networks.push(n);
			}
		}
		this.dirtyNets.clear();
		const { views, mesh } = this.viewChanges(false);
		if (tasks.length === 0 && removed.length === 0 && networks.length === 0 && views.length === 0 && !mesh) return [];
		return chunk(false, tasks, removed, networks, views, mesh, this.filesFor(tasks));
	}

	/**
	 * The secret and config data `tasks` use that this session has not sent. Only tasks that run
	 * (or may run) get them: a task being shut down needs no data. Data the store does not have
	 * (or that does not open) is not sent: the worker then rejects the task, naming what is missing.
	 */
	private filesFor(tasks: Task[]): AssignedFile[] {
		const out: AssignedFile[] = [];
		const get = this.store.fileData;
		if (!get) return out;
		for (const t of tasks) {
			if (t.desiredState !== "running" && t.desiredState !== "ready" && t.desiredState !== "complete") continue;
			const refs = [
				...(t.spec.secrets ?? []).map((r) => ({ kind: "secret" as const, id: r.secretId, version: r.version })),
				...(t.spec.configs ?? []).map((r) => ({ kind: "config" as const, id: r.configId, version: r.version })),
			];
			for (const r of refs) {
				const key = `${r.kind}:${r.id}:${r.version}`;
				if (this.sentFiles.has(key)) continue;
				const data = get(r.kind, r.id, r.version);
				if (!data) continue;
				this.sentFiles.add(key);
				out.push({ ...r, data });
			}
		}
		return out;
	}

	/** Networks the tasks (and the mesh) use that this session does not have in their current form. */
	private networksFor(tasks: Task[], all: boolean): AssignedNetwork[] {
		const out: AssignedNetwork[] = [];
		const ids = new Set(tasks.flatMap((t) => (t.networks ?? []).map((a) => a.networkId)));
		const mesh = this.views.meshNetwork;
		if (mesh && (all || !this.nets.has(mesh))) ids.add(mesh);
		for (const id of ids) {
			const n = this.store.network(id);
			if (!n) continue;
			const key = JSON.stringify(n);
			if (!all && this.nets.get(id) === key) continue;
			this.nets.set(id, key);
			out.push(n);
		}
		return out;
	}
}

/** Split an assignment set into frames within LIMITS (a full set: `more` on all but the last). */
export function chunk(
	full: boolean,
	tasks: Task[],
	removed: string[],
	networks: AssignedNetwork[],
	views: NetworkView[] = [],
	mesh?: MeshView,
	files: AssignedFile[] = [],
): AssignmentsMessage[] {
	const frames: AssignmentsMessage[] = [];
	let cur: AssignmentsMessage = { t: "assignments", full, tasks: [], removed: [], networks: [] };
	let bytes = 0;
	const room = (n: number, count: number, max: number) =>
		count < max && (bytes === 0 || bytes + n <= LIMITS.chunkBytes);
	const next = () => {
		frames.push(cur);
		cur = { t: "assignments", full, tasks: [], removed: [], networks: [] };
		bytes = 0;
	};
	if (mesh) {
		cur.mesh = mesh;
		bytes += pack(mesh).length;
	}
	// Before the tasks: a task's data is in its frame or an earlier one.
	for (const f of files) {
		const size = f.data.length + 64;
		if (!room(size, cur.files?.length ?? 0, LIMITS.filesPerFrame)) next();
		cur.files ??= [];
		cur.files.push(f);
		bytes += size;
	}
	for (const v of views) {
		const size = pack(v).length;
		if (!room(size, cur.views?.length ?? 0, LIMITS.viewsPerFrame)) next();
		cur.views ??= [];
		cur.views.push(v);
		bytes += size;
	}
	for (const n of networks) {
		const size = pack(n).length;
		if (!room(size, cur.networks.length, LIMITS.networksPerFrame)) next();
		cur.networks.push(n);
		bytes += size;
	}
	for (const t of tasks) {
		const size = pack(t).length;
		if (!room(size, cur.tasks.length, LIMITS.tasksPerFrame)) next();
		cur.tasks.push(t);
		bytes += size;
	}
	for (const id of removed) {
		if (!room(id.length + 2, cur.removed.length, LIMITS.tasksPerFrame)) next();
		cur.removed.push(id);
		bytes += id.length + 2;
	}
	frames.push(cur);
	if (full)
		frames.forEach((f, i) => {
			f.more = i < frames.length - 1;
		});
	return frames;
}
