// Cgroup layout, detected once per Runtime: v2 (one unified tree), hybrid (v1 controllers plus a
// v2 tree at unified/, systemd's default on older distros, this machine) or pure v1. runc creates
// the container's cgroup at cgroupsPath in every hierarchy; stats and the cleanup checks read the
// same places. The root is a parameter so tests can point it at fixture trees.
import { existsSync, lstatSync, readdirSync, readFileSync, rmdirSync } from "node:fs";
import { join } from "node:path";

export type CgroupMode = "v1" | "hybrid" | "v2";

export interface CgroupLayout {
	mode: CgroupMode;
	root: string;
}

export function detectCgroups(root = "/sys/fs/cgroup"): CgroupLayout {
	if (existsSync(join(root, "cgroup.controllers"))) return { mode: "v2", root };
	if (existsSync(join(root, "unified", "cgroup.controllers"))) return { mode: "hybrid", root };
	return { mode: "v1", root };
}

/** Controller name -> directory of the cgroup `rel` (e.g. "tsswarm/<id>") in that controller. */
export function cgroupDirs(l: CgroupLayout, rel: string): { memory: string; cpu: string; pids: string } {
	const r = rel.replace(/^\/+/, "");
	if (l.mode === "v2") {
		const d = join(l.root, r);
		return { memory: d, cpu: d, pids: d };
	}
	// cpuacct is its own mount or co-mounted with cpu as "cpu,cpuacct" (symlinked as cpuacct).
	const cpuacct = existsSync(join(l.root, "cpuacct")) ? "cpuacct" : "cpu,cpuacct";
	return { memory: join(l.root, "memory", r), cpu: join(l.root, cpuacct, r), pids: join(l.root, "pids", r) };
}

/** Every directory the cgroup `rel` can have, one per hierarchy (symlinked co-mounts counted once). */
export function allCgroupDirs(l: CgroupLayout, rel: string): string[] {
	const r = rel.replace(/^\/+/, "");
	if (l.mode === "v2") return [join(l.root, r)];
	const out: string[] = [];
	for (const name of readdirSync(l.root)) {
		const p = join(l.root, name);
		try {
			if (!lstatSync(p).isDirectory()) continue;
		} catch {
			continue;
		}
		out.push(join(p, r));
	}
	return out;
}

export function existingCgroupDirs(l: CgroupLayout, rel: string): string[] {
	return allCgroupDirs(l, rel).filter((d) => existsSync(d));
}

/** Removes the (empty) cgroup `rel` everywhere; returns the directories that could not go. */
export function removeCgroupDirs(l: CgroupLayout, rel: string): string[] {
	const left: string[] = [];
	for (const d of existingCgroupDirs(l, rel)) {
		try {
			rmdirSync(d);
		} catch {
			left.push(d);
		}
	}
	return left;
}

export interface CgroupStats {
	cpuNanos?: number;
	memoryBytes?: number;
	memoryLimit?: number;
	pids?: number;
}

const read = (p: string) => {
	try {
		return readFileSync(p, "utf8").trim();
	} catch {
		return undefined;
	}
};
const num = (s: string | undefined) => (s === undefined || s === "" || s === "max" ? undefined : Number(s));

export function readCgroupStats(l: CgroupLayout, rel: string): CgroupStats {
	const d = cgroupDirs(l, rel);
	if (l.mode === "v2") {
		const usec = read(join(d.cpu, "cpu.stat"))?.match(/usage_usec (\d+)/)?.[1];
		return {
			cpuNanos: usec === undefined ? undefined : Number(usec) * 1000,
			memoryBytes: num(read(join(d.memory, "memory.current"))),
			memoryLimit: num(read(join(d.memory, "memory.max"))),
			pids: num(read(join(d.pids, "pids.current"))),
		};
	}
	const limit = num(read(join(d.memory, "memory.limit_in_bytes")));
	return {
		cpuNanos: num(read(join(d.cpu, "cpuacct.usage"))),
		memoryBytes: num(read(join(d.memory, "memory.usage_in_bytes"))),
		// v1 reports "no limit" as a huge page-rounded number (~2^63).
		memoryLimit: limit !== undefined && limit < 2 ** 62 ? limit : undefined,
		pids: num(read(join(d.pids, "pids.current"))),
	};
}
