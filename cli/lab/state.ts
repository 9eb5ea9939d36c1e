// The lab's record on disk: written before each kernel object is made (an intent log), so a lab
// whose owner died at any point — even by SIGKILL — can be swept completely by a later run.
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { LabError } from "./errors.ts";

export interface LabNode {
	name: string;
	netns: string;
	address: string;
	dir: string;
	/** os/arch its agent runs as (a cluster lab), e.g. linux/arm64 under qemu-user on an x86 host. */
	platform?: string;
	/** Its agent's `zone` label (`lab up --zones`), autopilot's failure domain. */
	zone?: string;
	/** Its `tsswarm agent` (a cluster lab): stopped by `lab stop`, started again by `lab start`. */
	agent?: { state: "running" | "stopped"; process?: ProcessIdentity };
	/** `lab cut` dropped all its underlay traffic (until `lab heal`). */
	cut?: boolean;
}

export interface LabRecord {
	version: 1;
	name: string;
	createdAt: string;
	/** The process that made the lab; a non-persistent lab whose owner is gone is swept. */
	owner: ProcessIdentity;
	/** `lab up` (and `--keep`) make a lab outlive its owner until `lab down`. */
	persistent: boolean;
	status: "creating" | "up" | "destroying";
	dir: string;
	hubNetns: string;
	nodes: LabNode[];
	/** `--cluster`: one agent per node, init on n1, the others joined. */
	cluster?: boolean;
	/** How many nodes init/join with the manager token (default 3); the others join as workers. */
	managers?: number;
	registry?: { netns: string; address: string; port: number; dataDir: string; url: string };
	/** Processes the lab started, by identity, so a sweep never kills a reused pid. */
	processes: ProcessIdentity[];
}

export interface ProcessIdentity {
	pid: number;
	/** Start time in clock ticks since boot (/proc/PID/stat field 22). */
	startTime: number;
}

export function labRoot(): string {
	return process.env.TSSWARM_LAB_ROOT ?? "/var/lib/tsswarm/labs";
}

export const labDir = (root: string, name: string) => join(root, name);
const recordPath = (root: string, name: string) => join(root, name, "lab.json");

export function processStartTime(pid: number): number | undefined {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		// The command name (field 2) may hold spaces and parentheses; fields after the last ')'.
		const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		return Number(fields[19]);
	} catch {
		return undefined;
	}
}

export function identify(pid: number): ProcessIdentity | undefined {
	const startTime = processStartTime(pid);
	return startTime === undefined ? undefined : { pid, startTime };
}

export function isAlive(p: ProcessIdentity): boolean {
	return processStartTime(p.pid) === p.startTime;
}

/** Alive and not a zombie waiting for its parent to reap it (a killed agent of this process). */
export function isRunning(p: ProcessIdentity): boolean {
	if (!isAlive(p)) return false;
	try {
		const stat = readFileSync(`/proc/${p.pid}/stat`, "utf8");
		return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
	} catch {
		return false;
	}
}

export function writeRecord(root: string, rec: LabRecord): void {
	mkdirSync(labDir(root, rec.name), { recursive: true });
	const path = recordPath(root, rec.name);
	const tmp = `${path}.${process.pid}.tmp`;
	const fd = openSync(tmp, "w", 0o600);
	try {
		writeSync(fd, `${JSON.stringify(rec, null, 2)}\n`);
		fsyncSync(fd);
	} finally {
		closeSync(fd);
	}
	renameSync(tmp, path);
}

export function readRecord(root: string, name: string): LabRecord | undefined {
	let text: string;
	try {
		text = readFileSync(recordPath(root, name), "utf8");
	} catch (err) {
		if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
		throw err;
	}
	try {
		const rec = JSON.parse(text) as LabRecord;
		if (rec.version !== 1 || rec.name !== name) throw new Error("unexpected version or name");
		return rec;
	} catch (err) {
		throw new LabError(
			`lab record ${recordPath(root, name)} is unreadable: ${(err as Error).message}`,
			"ERR_LAB_RECORD",
		);
	}
}

export function listRecordNames(root: string): string[] {
	try {
		return readdirSync(root, { withFileTypes: true })
			.filter((d) => d.isDirectory())
			.map((d) => d.name)
			.sort();
	} catch (err) {
		if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
		throw err;
	}
}

/** Whether a process with this pid exists (signal 0 probes without signalling). */
export function pidAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
}
