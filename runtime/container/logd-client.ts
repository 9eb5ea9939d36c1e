// Talking to the data root's log daemon (log-daemon.ts): where it listens, whether it is alive,
// starting it, and handing it a started container.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
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
 * An abstract unix socket (Linux): no file to go stale. Abstract names belong to a network
 * namespace, so every process using a data root must share one (the host's, as the agent does).
 */
export function logdAddress(root: string): string {
	return `\0tsswarm-logd-${createHash("sha256").update(resolve(root)).digest("hex").slice(0, 32)}`;
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

/** Starts a daemon, detached; it adopts every running container itself, or exits if one already runs. */
export function spawnLogd(root: string, env: NodeJS.ProcessEnv): void {
	const log = openSync(join(root, "logd.log"), "a");
	const p = spawn(process.execPath, [new URL("./log-daemon.ts", import.meta.url).pathname, root], {
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
