// Parsing the resource flags users type (--memory 256m, --cpus 1.5, --pids-limit 100).
import { InvalidSpecError } from "../errors.ts";

const UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "512m" -> bytes; at least 6 MiB (what runc itself needs), as Docker requires. */
export function parseMemory(v: string | number): number {
	if (typeof v === "number") return validMemory(v, String(v));
	const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(v.trim());
	if (!m)
		throw new InvalidSpecError(
			`invalid memory value "${v}": use a number with an optional unit b, k, m or g (e.g. 256m)`,
		);
	return validMemory(Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!), v);
}

function validMemory(bytes: number, raw: string): number {
	if (!Number.isFinite(bytes) || bytes < 6 * 1024 * 1024)
		throw new InvalidSpecError(`invalid memory value "${raw}": the minimum is 6m`);
	return bytes;
}

/** "1.5" CPUs -> CFS quota/period (period 100 ms). */
export function parseCpus(v: string | number): { quota: number; period: number } {
	const n = typeof v === "number" ? v : Number(v);
	if (!Number.isFinite(n) || n <= 0 || n > 1024 || (typeof v === "string" && !/^\d+(\.\d+)?$/.test(v.trim()))) {
		throw new InvalidSpecError(`invalid cpus value "${v}": use a positive number such as 0.5 or 2`);
	}
	const period = 100_000;
	return { quota: Math.max(1000, Math.round(n * period)), period };
}

export function parsePidsLimit(v: string | number): number {
	const n = typeof v === "number" ? v : Number(v);
	if (!Number.isInteger(n) || n < 1) throw new InvalidSpecError(`invalid pids limit "${v}": use a positive integer`);
	return n;
}

/** "10m" / "512k" / bytes -> bytes, at least 1 KiB (log sizes and the like). */
export function parseSize(v: string | number, what: string): number {
	const m = typeof v === "number" ? undefined : /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(v.trim());
	const n = typeof v === "number" ? v : m ? Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!) : Number.NaN;
	if (!Number.isFinite(n) || n < 1024)
		throw new InvalidSpecError(`invalid ${what} "${v}": use a size of at least 1k, such as 10m`);
	return n;
}
