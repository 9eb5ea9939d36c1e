// Secrets and configs on this node: their data only in memory and on a node-level tmpfs
// (DATA/worker/files, 0700), never on disk. Each task gets its own files there (owner and mode as
// its references say), bind-mounted read-only into its container, and removed when the task ends;
// the tmpfs outlives agent restarts, so re-adopted containers keep theirs.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Mount } from "../../runtime/index.ts";
import type { AssignedFile } from "../dispatch/index.ts";
import { secretPath, type Task } from "../services/index.ts";
import type { WorkerLogger } from "./controller.ts";
import { TaskFileError } from "./errors.ts";

const TMPFS_MAGIC = 0x01021994;
const TASK_DIR = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$/;

/** How the tmpfs is checked and made (tests give their own; a real node mounts one). */
export interface TmpfsOps {
	isTmpfs(dir: string): boolean;
	mount(dir: string): void;
}

export const realTmpfs: TmpfsOps = {
	isTmpfs: (dir) => statfsSync(dir).type === TMPFS_MAGIC,
	mount: (dir) =>
		execFileSync("mount", ["-t", "tmpfs", "-o", "mode=0700,size=64m,nosuid,nodev,noexec", "tsswarm-files", dir], {
			stdio: ["ignore", "ignore", "pipe"],
		}),
};

interface FileRef {
	kind: "secret" | "config";
	id: string;
	name: string;
	version: number;
	/** Where it goes in the container. */
	path: string;
	uid: number;
	gid: number;
	mode: number;
}

/** A task's secret and config references, with their container paths. */
export function fileRefs(t: Task): FileRef[] {
	const own = (r: { uid: string; gid: string; mode: number }) => ({
		uid: Number(r.uid),
		gid: Number(r.gid),
		mode: r.mode,
	});
	return [
		...(t.spec.secrets ?? []).map((r) => ({
			kind: "secret" as const,
			id: r.secretId,
			name: r.secretName,
			version: r.version,
			path: secretPath(r.target),
			...own(r),
		})),
		...(t.spec.configs ?? []).map((r) => ({
			kind: "config" as const,
			id: r.configId,
			name: r.configName,
			version: r.version,
			path: r.target,
			...own(r),
		})),
	];
}

const keyOf = (r: { kind: string; id: string; version: number }) => `${r.kind}:${r.id}:${r.version}`;

export class NodeFiles {
	readonly dir: string;
	private readonly log: WorkerLogger;
	private readonly tmpfs: TmpfsOps;
	/** "kind:id:version" -> the data, as the dispatcher sent it this agent's life. */
	private readonly data = new Map<string, Uint8Array>();
	private mounted = false;

	constructor(dir: string, log: WorkerLogger, tmpfs: TmpfsOps = realTmpfs) {
		this.dir = dir;
		this.log = log;
		this.tmpfs = tmpfs;
	}

	/** Data from an assignment (kept in memory only). */
	put(files: readonly AssignedFile[] = []): void {
		for (const f of files) this.data.set(keyOf(f), f.data);
	}

	/** How many data versions are held in memory (tests, stats). */
	get held(): number {
		return this.data.size;
	}

	/** The tmpfs, mounted on first use; refused (nothing written) if what is there is not one. */
	private ensureTmpfs(): void {
		if (this.mounted) return;
		mkdirSync(this.dir, { recursive: true, mode: 0o700 });
		if (!this.tmpfs.isTmpfs(this.dir)) {
			try {
				this.tmpfs.mount(this.dir);
			} catch (err) {
				throw new TaskFileError(`cannot mount a tmpfs on ${this.dir} for secrets: ${(err as Error).message}`);
			}
			if (!this.tmpfs.isTmpfs(this.dir))
				throw new TaskFileError(`${this.dir} is not a tmpfs: refusing to write secrets there`);
		}
		chmodSync(this.dir, 0o700);
		this.mounted = true;
	}

	/**
	 * Writes the task's files (from the data in memory; files already there from before an agent
	 * restart are kept when the data is not) and returns their read-only mounts.
	 */
	prepare(task: Task): Mount[] {
		const refs = fileRefs(task);
		if (refs.length === 0) return [];
		if (!TASK_DIR.test(task.id)) throw new TaskFileError(`task id ${JSON.stringify(task.id)} is not a directory name`);
		this.ensureTmpfs();
		const dir = join(this.dir, task.id);
		mkdirSync(dir, { recursive: true, mode: 0o700 });
		return refs.map((r, i) => {
			const file = join(dir, `${r.kind}-${i}`);
			const data = this.data.get(keyOf(r));
			if (data) {
				rmSync(file, { force: true });
				writeFileSync(file, data, { mode: 0o600, flag: "wx" });
				chownSync(file, r.uid, r.gid);
				chmodSync(file, r.mode);
			} else if (!existsSync(file))
				throw new TaskFileError(
					`${r.kind} ${r.name} (version ${r.version}) is not on this node: no manager sent its data (is the leader able to open it?)`,
				);
			return { source: file, target: r.path, readonly: true };
		});
	}

	/** The task ended: its files go (a container still running keeps its mount until it exits). */
	release(taskId: string): void {
		if (!TASK_DIR.test(taskId)) return;
		const dir = join(this.dir, taskId);
		if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
	}

	/**
	 * Keeps only what `tasks` use: data in memory of no task is dropped; with `dirs`, the
	 * directories of tasks not listed go too (after a complete set, once orphans are removed).
	 */
	gc(tasks: readonly Task[], dirs = false): void {
		const wanted = new Set(tasks.flatMap((t) => fileRefs(t).map(keyOf)));
		for (const k of [...this.data.keys()]) if (!wanted.has(k)) this.data.delete(k);
		if (!dirs || !existsSync(this.dir)) return;
		const ids = new Set(tasks.filter((t) => fileRefs(t).length > 0).map((t) => t.id));
		for (const d of readdirSync(this.dir)) {
			if (ids.has(d)) continue;
			this.log.info({ task: d }, "removing the secret and config files of a task no longer here");
			this.release(d);
		}
	}
}
