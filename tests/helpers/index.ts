// Shared test helpers: unique names for kernel objects and dirs, waiting on conditions with a
// deadline (never sleep-and-hope), and cleanup that runs whether the test passes or fails.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A short name unique to this test run, safe for kernel objects (interface names are limited to
 * 15 characters, so keep `prefix` to 6 or fewer). Example: uniqueName("lab") -> "lab3f9a1c".
 */
export function uniqueName(prefix: string): string {
	return `${prefix}${randomBytes(3).toString("hex")}`;
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function tempDir(prefix = "tsswarm-test-"): { path: string; remove: () => void } {
	const path = mkdtempSync(join(tmpdir(), prefix));
	return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export class TimeoutError extends Error {
	override name = "TimeoutError";
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes; the error names `what`. */
export async function waitFor<T>(
	what: string,
	check: () => T | Promise<T>,
	{ timeoutMs = 10_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<NonNullable<T>> {
	const deadline = Date.now() + timeoutMs;
	let lastError: unknown;
	for (;;) {
		try {
			const v = await check();
			if (v) return v as NonNullable<T>;
		} catch (err) {
			lastError = err;
		}
		if (Date.now() > deadline) {
			const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
			throw new TimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
		}
		await new Promise((r) => setTimeout(r, intervalMs));
	}
}

/** Removes an (empty) cgroup named `name` from every hierarchy, v1 or v2, if it exists. */
export function removeCgroup(name: string): void {
	const base = "/sys/fs/cgroup";
	const roots = existsSync(`${base}/cgroup.controllers`) ? [base] : readdirSync(base).map((d) => `${base}/${d}`);
	for (const r of roots) {
		try {
			rmdirSync(`${r}/${name}`);
		} catch {}
	}
}

/** Every regular file under dir, below 256 MiB (sockets and the like skipped): for greps of data dirs. */
export function filesUnder(dir: string): string[] {
	const out: string[] = [];
	for (const e of readdirSync(dir, { withFileTypes: true })) {
		const p = join(dir, e.name);
		if (e.isDirectory()) out.push(...filesUnder(p));
		else if (e.isFile() && statSync(p).size < 256 << 20) out.push(p);
	}
	return out;
}
