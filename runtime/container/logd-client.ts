// Talking to the data root's log daemon (log-daemon.ts): where it listens, whether it is alive,
// starting it, and handing it a started container.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { helperCommand } from "./helpers.ts";
import { procStart } from "./proc.ts";

/** What the daemon needs to know of a container, kept in its dir so that a successor can adopt it. */
export interface LogJob {
	logMaxSize: number;
	logMaxFiles: number;
	/** --rm: the daemon removes the container once its exit code is written. */
	autoRemove: boolean;
	/** runc and its global flags (e.g. --root), for the removal. */
	runc: string[];
}

export function writeLogJob(dir: string, job: LogJob): void {
	writeFileSync(join(dir, "logjob.json"), JSON.stringify(job));
}

export function readLogJob(dir: string): LogJob | undefined {
	try {
		return JSON.parse(readFileSync(join(dir, "logjob.json"), "utf8")) as LogJob;
	} catch {
		return undefined;
	}
}

/**
 * A unix socket in the data root: reachable from any network namespace, and only by whoever may
 * write in the root. Socket paths are limited to 107 bytes; a deeper root's goes to /run.
 */
export function logdAddress(root: string): string {
	const p = join(resolve(root), "logd.sock");
	return p.length <= 100
		? p
		: `/run/tsswarm-logd-${createHash("sha256").update(resolve(root)).digest("hex").slice(0, 32)}.sock`;
}

/** "PID START" of the daemon, for refresh(), which must answer without waiting. */
export function logdPidFile(root: string): string {
	return join(root, "logd.pid");
}

export function logdAlive(root: string): boolean {
	try {
		const [pid, start] = readFileSync(logdPidFile(root), "utf8").split(" ");
		return procStart(Number(pid)) === start;
	} catch {
		return false;
	}
}

/**
 * Ends the root's log daemon (by its pid, checked against its start time) and waits until it is
 * gone. For owners tearing a root down with no container left in it: tests, a removed lab.
 */
export async function stopLogDaemon(root: string, timeoutMs = 5000): Promise<void> {
	let pid: number;
	let start: string | undefined;
	try {
		const [p, st] = readFileSync(logdPidFile(root), "utf8").split(" ");
		pid = Number(p);
		start = st;
	} catch {
		return;
	}
	if (!start || procStart(pid) !== start) return;
	process.kill(pid, "SIGTERM");
	const deadline = Date.now() + timeoutMs;
	while (procStart(pid) === start) {
		if (Date.now() > deadline) {
			process.kill(pid, "SIGKILL");
			return;
		}
		await new Promise((r) => setTimeout(r, 10));
	}
}

/**
 * Starts a daemon, detached; it adopts every running container itself. One per root: it holds an
 * flock on logd.lock for its whole life (taken by flock(1) on fd 9, which the daemon inherits; the
 * kernel drops it when the daemon dies, so it never goes stale), and a second one exits at once.
 */
export function spawnLogd(root: string, env: NodeJS.ProcessEnv): void {
	let log: number;
	try {
		log = openSync(join(root, "logd.log"), "a");
	} catch {
		return; // the root is gone: nothing to serve
	}
	const script = 'exec 9>>"$1/logd.lock"; flock -n 9 || exit 0; root=$1; shift; exec "$@" "$root"';
	const p = spawn("/bin/sh", ["-c", script, "sh", root, ...helperCommand("log-daemon")], {
		detached: true,
		stdio: ["ignore", "ignore", log],
		env,
	});
	closeSync(log);
	p.unref();
}

/**
 * Tells the daemon about a container whose shim holds its FIFOs; starts a daemon when none
 * answers "ok" (none running, or one that was just exiting for idleness). Does not wait for a
 * new daemon: it adopts the container when it comes up, and the FIFOs buffer meanwhile.
 */
export function handOff(root: string, id: string, env: NodeJS.ProcessEnv): Promise<void> {
	return new Promise((resolve) => {
		const sock = connect(logdAddress(root));
		let done = false;
		const finish = (ok: boolean) => {
			if (done) return;
			done = true;
			sock.destroy();
			if (!ok) spawnLogd(root, env);
			resolve();
		};
		const timer = setTimeout(() => finish(false), 2000);
		sock.on("connect", () => sock.write(`${id}\n`));
		sock.on("data", (d: Buffer) => {
			if (d.includes("ok\n")) {
				clearTimeout(timer);
				finish(true);
			}
		});
		sock.on("error", () => {
			clearTimeout(timer);
			finish(false);
		});
		sock.on("close", () => {
			clearTimeout(timer);
			finish(false);
		});
	});
}
