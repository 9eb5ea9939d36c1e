// Exec-based health checks, as Docker's: every interval the test command runs inside the container
// (runc exec) with a timeout; `retries` consecutive failures make it unhealthy, one success makes it
// healthy, failures during the start period do not count. The loop runs in a small detached process
// per checked container (health-runner.ts), so checks go on when the CLI or the agent that started
// the container exits or restarts; results land in health.json next to the container's state.
import { spawn } from "node:child_process";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidSpecError } from "../errors.ts";

export interface HealthcheckSpec {
	/** ["CMD", prog, args...], ["CMD-SHELL", "command"], or ["NONE"] to disable the image's check. */
	test: string[];
	/** Durations: milliseconds, or text such as "30s", "1m30s", "500ms". */
	interval?: string | number;
	timeout?: string | number;
	retries?: number;
	startPeriod?: string | number;
}

export interface Healthcheck {
	argv: string[];
	intervalMs: number;
	timeoutMs: number;
	retries: number;
	startPeriodMs: number;
}

export type HealthStatus = "starting" | "healthy" | "unhealthy";

export interface HealthProbe {
	start: string;
	end: string;
	exitCode: number;
	output: string;
}

export interface HealthState {
	status: HealthStatus;
	failingStreak: number;
	/** The last five probes, newest last. */
	log: HealthProbe[];
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "1m30s" / "500ms" / 2000 -> milliseconds. */
export function parseDuration(v: string | number, what: string): number {
	if (typeof v === "number") {
		if (Number.isFinite(v) && v >= 0) return v;
	} else {
		const parts = [...v.trim().matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
		if (parts.length > 0 && parts.map((p) => p[0]).join("") === v.trim())
			return parts.reduce((ms, p) => ms + Number(p[1]) * DURATION_UNITS[p[2]!]!, 0);
	}
	throw new InvalidSpecError(`invalid ${what} "${v}": use a duration such as 30s, 1m30s or 500ms`);
}

/** Image config Healthcheck (nanoseconds) merged with the user's; undefined when there is none. */
export function resolveHealthcheck(
	user: HealthcheckSpec | undefined,
	image: { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number } | undefined,
): Healthcheck | undefined {
	const test = user?.test ?? image?.Test;
	if (!test || test.length === 0 || test[0] === "NONE") return undefined;
	let argv: string[];
	if (test[0] === "CMD" && test.length > 1) argv = test.slice(1);
	else if (test[0] === "CMD-SHELL" && test.length === 2) argv = ["/bin/sh", "-c", test[1]!];
	else throw new InvalidSpecError(`invalid health check test ${JSON.stringify(test)}: use CMD, CMD-SHELL or NONE`);
	const ns = (x: number | undefined) => (x ? x / 1e6 : undefined);
	const hc: Healthcheck = {
		argv,
		intervalMs: parseDuration(user?.interval ?? ns(image?.Interval) ?? 30_000, "health interval"),
		timeoutMs: parseDuration(user?.timeout ?? ns(image?.Timeout) ?? 30_000, "health timeout"),
		retries: user?.retries ?? image?.Retries ?? 3,
		startPeriodMs: parseDuration(user?.startPeriod ?? ns(image?.StartPeriod) ?? 0, "health start period"),
	};
	if (hc.intervalMs < 10) throw new InvalidSpecError(`invalid health interval: at least 10ms`);
	if (hc.timeoutMs < 10) throw new InvalidSpecError(`invalid health timeout: at least 10ms`);
	if (!Number.isInteger(hc.retries) || hc.retries < 1)
		throw new InvalidSpecError(`invalid health retries "${hc.retries}": use a positive integer`);
	return hc;
}

export function readHealth(dir: string): HealthState | undefined {
	try {
		return JSON.parse(readFileSync(join(dir, "health.json"), "utf8")) as HealthState;
	} catch {
		return undefined;
	}
}

export function writeHealth(dir: string, h: HealthState): void {
	const p = join(dir, "health.json");
	writeFileSync(`${p}.tmp`, JSON.stringify(h));
	renameSync(`${p}.tmp`, p);
}

const MAX_OUTPUT = 4096;

/**
 * One probe: `runc exec` of the test; on timeout the probe's process in the container is killed
 * (through the pid runc reports) and runc with it.
 */
export function probe(runc: string[], id: string, dir: string, hc: Healthcheck): Promise<HealthProbe> {
	const start = new Date().toISOString();
	const pidFile = join(dir, "health-probe.pid");
	rmSync(pidFile, { force: true });
	const [cmd, ...args] = [...runc, "exec", "--pid-file", pidFile, id, ...hc.argv];
	const child = spawn(cmd!, args, { stdio: ["ignore", "pipe", "pipe"] });
	let output = "";
	const take = (d: Buffer) => {
		if (output.length < MAX_OUTPUT) output += d.toString().slice(0, MAX_OUTPUT - output.length);
	};
	child.stdout!.on("data", take);
	child.stderr!.on("data", take);
	return new Promise((resolve) => {
		let timedOut = false;
		const timer = setTimeout(() => {
			timedOut = true;
			try {
				process.kill(Number(readFileSync(pidFile, "utf8")), "SIGKILL");
			} catch {}
			child.kill("SIGKILL");
		}, hc.timeoutMs);
		const done = (exitCode: number, msg?: string) => {
			clearTimeout(timer);
			resolve({
				start,
				end: new Date().toISOString(),
				exitCode,
				output: timedOut ? `health check exceeded its timeout (${hc.timeoutMs} ms)` : (msg ?? output),
			});
		};
		child.on("error", (err) => done(-1, err.message));
		child.on("close", (code) => done(timedOut ? -1 : (code ?? -1)));
	});
}

/** The status after one more probe (Docker's rules). */
export function nextHealth(prev: HealthState, p: HealthProbe, hc: Healthcheck, inStartPeriod: boolean): HealthState {
	const log = [...prev.log, p].slice(-5);
	if (p.exitCode === 0) return { status: "healthy", failingStreak: 0, log };
	if (inStartPeriod && prev.status === "starting") return { ...prev, log };
	const failingStreak = prev.failingStreak + 1;
	return { status: failingStreak >= hc.retries ? "unhealthy" : prev.status, failingStreak, log };
}
