// Starting a container's shim. Two kinds, one job (shim.ts's ShimJob):
//  - the shell shim: /bin/sh runs `runc run` at once, with the Node log writer (log-writer.ts)
//    alongside on FIFOs; for one-shot callers (tsswarm run -d), nothing to start ahead;
//  - the Node shim (shim.ts): runc run and the log writer in one process, started ahead by a
//    long-lived Runtime (prewarmShim) and handed its job on stdin.
// Both are detached (own session) so they outlive the caller, and write the exit code last.
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, renameSync } from "node:fs";
import { getCompileCacheDir } from "node:module";
import { join } from "node:path";
import type { ShimJob } from "./shim.ts";

/**
 * The shell shim: the FIFOs' write ends go to runc, their read ends (opened here first, so no open
 * blocks and no end is lost if runc finishes before the writer starts) to the log writer on fds 5
 * and 6; the exit code appears once the writer has written everything. Only builtins besides runc
 * and the writer: each extra program costs the start a fork and exec.
 */
export function spawnShellShim(job: ShimJob, env: NodeJS.ProcessEnv): ChildProcess {
	const q = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
	const runc = [...job.runc, "run", "--bundle", job.dir, job.id].map(q).join(" ");
	const writer = [process.execPath, new URL("./log-writer.ts", import.meta.url).pathname, job.dir];
	const rootfs = q(join(job.dir, "rootfs"));
	const script = [
		`cd ${q(job.dir)} || exit 1`,
		"exec 3<>out.fifo 4<>err.fifo 5<out.fifo 6<err.fifo",
		`${[...writer, String(job.logMaxSize), String(job.logMaxFiles)].map(q).join(" ")} </dev/null >/dev/null 2>>shim.log 3>&- 4>&- &`,
		"exec 5<&- 6<&-",
		`${runc} </dev/null >&3 2>&4 3>&- 4>&-`,
		"code=$?",
		"exec 3>&- 4>&-",
		"wait",
		// One small write: readers take an empty file for "not yet".
		'echo "$code" > exitcode',
		...(job.autoRemove
			? [
					`[ -d ${q(join(job.runc[job.runc.indexOf("--root") + 1] ?? "", job.id))} ] && ${[...job.runc, "delete", "--force", job.id].map(q).join(" ")} >/dev/null 2>&1`,
					`umount ${rootfs} 2>/dev/null || umount -l ${rootfs} 2>/dev/null`,
					`cd / && rm -rf ${q(job.dir)}`,
				]
			: []),
	].join("\n");
	const shim = spawn("/bin/sh", ["-c", script], { detached: true, stdio: "ignore", env });
	shim.unref();
	return shim;
}

/**
 * The container's stdout and stderr: FIFOs, so that /dev/stdout opens inside the container. Node
 * cannot make a FIFO, and running mkfifo from this (large) process costs 5-10 ms of the start, so
 * a long-lived Runtime keeps a few made ahead in POOL (fillFifoPool) and start() renames two in;
 * whatever the pool lacks (empty, or another process took one first) is made here.
 */
export function makeFifos(dir: string, pool?: string): void {
	const want = ["out.fifo", "err.fifo"];
	let spares: string[] = [];
	try {
		if (pool) spares = readdirSync(pool);
	} catch {}
	for (const spare of spares) {
		if (want.length === 0) break;
		try {
			renameSync(join(pool!, spare), join(dir, want[0]!));
			want.shift();
		} catch {} // taken by another process meanwhile
	}
	if (want.length > 0)
		execFileSync(
			"mkfifo",
			want.map((f) => join(dir, f)),
		);
}

/** Makes FIFOs ahead (see makeFifos) until POOL holds `count`; one mkfifo, off the caller's start. */
export function fillFifoPool(pool: string, count: number): Promise<void> {
	mkdirSync(pool, { recursive: true });
	const missing = count - readdirSync(pool).length;
	if (missing <= 0) return Promise.resolve();
	const names = Array.from({ length: missing }, () => join(pool, `${randomBytes(8).toString("hex")}.fifo`));
	return new Promise((resolve) => {
		const p = execFile("mkfifo", names, () => resolve());
		p.unref();
	});
}

/** A Node shim waiting for its job on stdin; it outlives this process once it has one. */
export function spawnWarmShim(env: NodeJS.ProcessEnv): ChildProcess {
	const shim = spawn(process.execPath, [new URL("./shim.ts", import.meta.url).pathname], {
		detached: true,
		stdio: ["pipe", "ignore", "ignore"],
		env,
	});
	shim.unref();
	(shim.stdin as unknown as { unref(): void }).unref();
	shim.stdin!.on("error", () => {});
	return shim;
}

/**
 * The environment of the shims and health runners (Node processes started per container): with
 * Node's compile cache, so they do not strip their TypeScript again on every start (~30 ms).
 */
export function helperEnv(root: string): NodeJS.ProcessEnv {
	const cache = process.env.NODE_COMPILE_CACHE ?? getCompileCacheDir() ?? join(root, "compile-cache");
	return { ...process.env, NODE_COMPILE_CACHE: cache };
}
