// The shim of a container: /bin/sh running `runc run` in the foreground, detached (own session) so
// that it outlives whoever started it, holding the container's stdout/stderr FIFOs open read-write
// so that the data root's log daemon (log-daemon.ts) can be restarted without losing the pipes.
// When runc ends the shim writes its code to runc.exit and exits; the daemon turns that into
// exitcode once the log has everything.
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, renameSync } from "node:fs";
import { getCompileCacheDir } from "node:module";
import { join } from "node:path";

export interface ShimJob {
	dir: string;
	/** runc and its global flags (e.g. --root); `run --bundle DIR ID` is added. */
	runc: string[];
	id: string;
}

/**
 * Only builtins besides runc: each extra program would cost the start a fork and exec. fifos.open
 * tells the log daemon that the pipes are held, so that an empty one means "nothing yet", not EOF.
 */
export function spawnShellShim(job: ShimJob, env: NodeJS.ProcessEnv): ChildProcess {
	const q = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
	const runc = [...job.runc, "run", "--bundle", job.dir, job.id].map(q).join(" ");
	const script = [
		`cd ${q(job.dir)} || exit 1`,
		"exec 3<>out.fifo 4<>err.fifo",
		": >fifos.open",
		`${runc} </dev/null >&3 2>&4 3>&- 4>&-`,
		// One small write: readers take an empty file for "not yet".
		'echo "$?" >runc.exit',
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
	let missing: number;
	try {
		mkdirSync(pool, { recursive: false });
	} catch {} // there already, or the root is gone (then readdirSync says so)
	try {
		missing = count - readdirSync(pool).length;
	} catch {
		return Promise.resolve();
	}
	if (missing <= 0) return Promise.resolve();
	const names = Array.from({ length: missing }, () => join(pool, `${randomBytes(8).toString("hex")}.fifo`));
	return new Promise((resolve) => {
		const p = execFile("mkfifo", names, () => resolve());
		p.unref();
	});
}

/**
 * The environment of the log daemon and health runners (Node processes): with Node's compile
 * cache, so that they do not strip their TypeScript again on every start (~30 ms).
 */
export function helperEnv(root: string): NodeJS.ProcessEnv {
	const cache = process.env.NODE_COMPILE_CACHE ?? getCompileCacheDir() ?? join(root, "compile-cache");
	return { ...process.env, NODE_COMPILE_CACHE: cache };
}
