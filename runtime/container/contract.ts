// The face the worker drives (and tests fake): one container's life is
//   pull -> prepare -> start -> wait | stop -> remove, with inspect, logs, stats and exec on the side.
// Every async call takes an AbortSignal; ids are the 64-hex container id (names and unique prefixes
// are accepted too). Runtime (runc + overlayfs + cgroups) implements it.
import type { PullProgress, ResolvedImage } from "../image/index.ts";
import type { CgroupStats } from "./cgroups.ts";
import type { HealthState } from "./health.ts";
import type { LogEntry, LogOptions } from "./logs.ts";
import type { ContainerState } from "./runtime.ts";
import type { ContainerSpec } from "./spec.ts";

export interface Signalled {
	signal?: AbortSignal;
}

export interface ContainerRuntime {
	/** Fetch the image for a platform (default: this machine's) into the local store. */
	pull(
		ref: string,
		o?: Signalled & { platform?: string; onProgress?: (p: PullProgress) => void },
	): Promise<ResolvedImage>;
	/** Resolve the (already stored) image, mount the rootfs, write the OCI bundle: status "created". */
	prepare(spec: ContainerSpec, o?: Signalled): Promise<ContainerState>;
	/** Start under a detached shim; resolves once runc runs it: status "running". */
	start(id: string, o?: Signalled): Promise<ContainerState>;
	/** Resolves with the exit code (255 if it was lost, e.g. the shim died; see `reason`). */
	wait(id: string, o?: Signalled): Promise<number>;
	/** SIGTERM, SIGKILL after graceMs (default 10 s). */
	stop(id: string, o?: Signalled & { graceMs?: number }): Promise<ContainerState>;
	/** Delete runc state, cgroups, mounts and files; a running one only with force. */
	remove(id: string, o?: Signalled & { force?: boolean }): Promise<void>;
	inspect(id: string): ContainerState & { dir: string; health?: HealthState };
	list(o?: { all?: boolean }): ContainerState[];
	/** The output so far, by stream. */
	logs(id: string, o?: { tail?: number }): { stdout: string; stderr: string };
	/** Log entries with times; `follow` ends when the container exits or the signal aborts. */
	logEntries(id: string, o?: LogOptions): AsyncGenerator<LogEntry>;
	/** One reading of the container's cgroup. */
	stats(id: string): CgroupStats & { id: string; name: string };
	/** Two readings intervalMs apart, with CPU % (100 = one core). */
	statsSample(
		ids: string[],
		o?: Signalled & { intervalMs?: number },
	): Promise<Array<CgroupStats & { id: string; name: string; cpuPercent?: number }>>;
	exec(
		id: string,
		argv: string[],
		o?: Signalled & { stdio?: "inherit" | "pipe"; env?: string[] },
	): Promise<{ code: number; stdout: string; stderr: string }>;
}
