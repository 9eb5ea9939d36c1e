// The worker's assignments on disk (DATA/worker/assignments.json), so that with no manager
// reachable a restarted agent still knows its tasks, their last reported states and networks
// (offline autonomy). Written whole with fsync + rename + directory fsync: a power cut leaves the
// old file or the new one, never half of either.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../../consensus/index.ts";
import type { MeshView, NetworkView } from "../dispatch/index.ts";
import type { Task } from "../services/index.ts";
import { AssignmentsFileError } from "./errors.ts";
import type { AssignedNetwork } from "./networking.ts";

export interface PersistedAssignments {
	version: 1;
	nodeId: string;
	/** The tasks with the status this worker last reported for each. */
	tasks: Task[];
	networks: AssignedNetwork[];
	/** The leader's network views and routing mesh last received (absent in older files). */
	views?: NetworkView[];
	mesh?: MeshView;
}

export class AssignmentFile {
	readonly path: string;
	constructor(dataRoot: string) {
		const dir = join(dataRoot, "worker");
		mkdirSync(dir, { recursive: true, mode: 0o700 });
		this.path = join(dir, "assignments.json");
	}

	/** What was saved last; undefined when nothing was (first start). */
	load(nodeId: string): PersistedAssignments | undefined {
		let text: string;
		try {
			text = readFileSync(this.path, "utf8");
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
			throw new AssignmentsFileError(this.path, (err as Error).message);
		}
		let raw: unknown;
		try {
			raw = JSON.parse(text);
		} catch (err) {
			throw new AssignmentsFileError(this.path, `not JSON (${(err as Error).message})`);
		}
		const p = raw as Partial<PersistedAssignments> | null;
		if (!p || typeof p !== "object" || p.version !== 1)
			throw new AssignmentsFileError(this.path, "not a version 1 assignments file");
		if (p.nodeId !== nodeId)
			throw new AssignmentsFileError(this.path, `it belongs to node ${String(p.nodeId)}, this is ${nodeId}`);
		if (!Array.isArray(p.tasks) || !Array.isArray(p.networks))
			throw new AssignmentsFileError(this.path, "tasks and networks must be lists");
		return p as PersistedAssignments;
	}

	save(a: Omit<PersistedAssignments, "version">): void {
		writeFileAtomic(this.path, Buffer.from(JSON.stringify({ version: 1, ...a })));
	}
}
