// Tearing a lab down: processes first (so nothing holds mounts or namespaces), then mounts,
// cgroups, namespaces (which takes every veth and the bridge with them) and finally its files.
// Every step tolerates objects that are already gone, so it doubles as the sweep of a crashed lab.
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LabNotFoundError } from "./errors.ts";
import { LAB_NETNS_PREFIX } from "./names.ts";
import { ipBatch, run } from "./shell.ts";
import {
	isAlive,
	type LabRecord,
	labDir,
	labRoot,
	listRecordNames,
	type ProcessIdentity,
	readRecord,
	writeRecord,
} from "./state.ts";

export function labNetnsList(rec: LabRecord): string[] {
	return [...rec.nodes.map((n) => n.netns), ...(rec.registry ? [rec.registry.netns] : []), rec.hubNetns];
}

export async function existingNetns(): Promise<Set<string>> {
	const { stdout } = await run(["ip", "netns", "list"]);
	return new Set(
		stdout
			.split("\n")
			.map((l) => l.split(" ")[0] ?? "")
			.filter(Boolean),
	);
}

async function pidsInNetns(netns: string): Promise<number[]> {
	const { stdout } = await run(["ip", "netns", "pids", netns], { allowFailure: true });
	return stdout.split(/\s+/).filter(Boolean).map(Number);
}

function signal(pid: number, sig: NodeJS.Signals): void {
	try {
		process.kill(pid, sig);
	} catch {
		// already gone
	}
}

/** SIGTERM, a grace period, then SIGKILL — only for processes whose identity still matches. */
async function stopProcesses(procs: ProcessIdentity[], graceMs: number): Promise<void> {
	const live = procs.filter(isAlive);
	for (const p of live) signal(p.pid, "SIGTERM");
	const deadline = Date.now() + graceMs;
	while (live.some(isAlive) && Date.now() < deadline) await sleep(25);
	for (const p of live) if (isAlive(p)) signal(p.pid, "SIGKILL");
}

/** Any process still inside one of the lab's namespaces was started there by the lab. */
async function killNetnsProcesses(netnsNames: string[]): Promise<void> {
	for (let round = 0; round < 20; round++) {
		const pids = (await Promise.all(netnsNames.map(pidsInNetns))).flat();
		if (pids.length === 0) return;
		for (const pid of pids) signal(pid, "SIGKILL");
		await sleep(50);
	}
}

function mountsUnder(dir: string): string[] {
	const prefix = dir.endsWith("/") ? dir : `${dir}/`;
	const out: string[] = [];
	for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
		const mountPoint = line.split(" ")[4]?.replace(/\\040/g, " ");
		if (mountPoint && (mountPoint === dir || mountPoint.startsWith(prefix))) out.push(mountPoint);
	}
	// Deepest first, so nested mounts come off before their parents.
	return out.sort((a, b) => b.length - a.length);
}

async function unmountAll(dir: string): Promise<void> {
	for (const m of mountsUnder(dir)) await run(["umount", "-l", m], { allowFailure: true });
}

/** Cgroup roots to search: the v2 unified root and each v1 controller hierarchy. */
function cgroupRoots(): string[] {
	const base = "/sys/fs/cgroup";
	if (existsSync(join(base, "cgroup.controllers"))) return [base];
	try {
		return readdirSync(base)
			.map((d) => join(base, d))
			.filter((p) => {
				try {
					return statSync(p).isDirectory() && existsSync(join(p, "cgroup.procs"));
				} catch {
					return false;
				}
			});
	} catch {
		return [];
	}
}

/** Lab agents are told to put their containers under cgroup `tsl-LAB-...` (see labNodeEnv). */
async function removeCgroups(lab: string): Promise<void> {
	const prefix = `${LAB_NETNS_PREFIX}${lab}-`;
	for (const root of cgroupRoots()) {
		let entries: string[];
		try {
			entries = readdirSync(root).filter((e) => e.startsWith(prefix));
		} catch {
			continue;
		}
		for (const e of entries) await removeCgroupTree(join(root, e));
	}
}

async function removeCgroupTree(dir: string): Promise<void> {
	let children: string[] = [];
	try {
		children = readdirSync(dir, { withFileTypes: true })
			.filter((d) => d.isDirectory())
			.map((d) => join(dir, d.name));
	} catch {
		return;
	}
	for (const c of children) await removeCgroupTree(c);
	for (let attempt = 0; attempt < 40; attempt++) {
		try {
			const procs = readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
			for (const pid of procs) signal(pid, "SIGKILL");
			rmdirSync(dir);
			return;
		} catch (err) {
			const code = (err as NodeJS.ErrnoException).code;
			if (code === "ENOENT") return;
			await sleep(25);
		}
	}
}

export async function destroyRecord(root: string, rec: LabRecord, graceMs = 3000): Promise<void> {
	if (rec.status !== "destroying") writeRecord(root, { ...rec, status: "destroying" });
	const netnsNames = labNetnsList(rec);
	await stopProcesses(rec.processes, graceMs);
	const present = await existingNetns();
	// Also whatever a test or agent made with the lab's prefix (overlay sandboxes, task namespaces).
	const prefix = `${LAB_NETNS_PREFIX}${rec.name}-`;
	const mine = [...present].filter((n) => netnsNames.includes(n) || n.startsWith(prefix));
	await killNetnsProcesses(mine);
	const dir = labDir(root, rec.name);
	await unmountAll(dir);
	await removeCgroups(rec.name);
	await ipBatch(mine.map((n) => `netns delete ${n}`));
	rmSync(dir, { recursive: true, force: true });
}

export async function destroyLab(name: string, opts: { root?: string } = {}): Promise<void> {
	const root = opts.root ?? labRoot();
	const rec = readRecord(root, name);
	if (!rec) throw new LabNotFoundError(name);
	await destroyRecord(root, rec);
}

/** True when nobody is looking after the lab any more: its owner died before making it persistent. */
export function isStale(rec: LabRecord): boolean {
	return !rec.persistent && !isAlive(rec.owner);
}

/** Removes every lab whose owner died without tearing it down (SIGKILL, crash, power cut of a test). */
export async function sweepStaleLabs(opts: { root?: string } = {}): Promise<string[]> {
	const root = opts.root ?? labRoot();
	const swept: string[] = [];
	for (const name of listRecordNames(root)) {
		let rec: LabRecord | undefined;
		try {
			rec = readRecord(root, name);
		} catch {
			continue; // an unreadable record is reported by `lab ls`, not silently deleted
		}
		if (rec && isStale(rec)) {
			await destroyRecord(root, rec, 0);
			swept.push(name);
		}
	}
	return swept;
}
