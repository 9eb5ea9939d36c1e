// Container logs in Docker's json-file format: one JSON object per line,
// {"log": "text\n", "stream": "stdout"|"stderr", "time": RFC 3339 with nanoseconds}, in
// container.log and its size-rotated predecessors container.log.1 (newest) ... .N (oldest).
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { InvalidSpecError } from "../errors.ts";
import { parseDuration } from "./health.ts";

export interface LogEntry {
	stream: "stdout" | "stderr";
	/** RFC 3339 with nanoseconds, UTC. */
	time: string;
	/** The text, with its newline when it had one. */
	log: string;
}

export interface LogOptions {
	/** Only entries at or after / before this time: RFC 3339, a unix time in seconds, or a duration ago ("10m"). */
	since?: string;
	until?: string;
	/** Only the last N entries (of what since/until leave). */
	tail?: number;
	follow?: boolean;
	signal?: AbortSignal;
}

export function rfc3339Nano(epochMs: number): string {
	const ms = Math.floor(epochMs);
	const ns = Math.floor((epochMs - ms) * 1e6);
	return `${new Date(ms).toISOString().slice(0, 23)}${String(ns).padStart(6, "0")}Z`;
}

export function encodeEntry(log: string, stream: "stdout" | "stderr"): Buffer {
	const time = rfc3339Nano(performance.timeOrigin + performance.now());
	return Buffer.from(`${JSON.stringify({ log, stream, time })}\n`);
}

/** --since / --until values -> epoch milliseconds. */
export function parseTime(v: string, what: string, now = Date.now()): number {
	const s = v.trim();
	if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
	if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
		const t = Date.parse(s.replace(/(\.\d{3})\d+/, "$1"));
		if (Number.isFinite(t)) return t;
	} else {
		try {
			return now - parseDuration(s, what);
		} catch {}
	}
	throw new InvalidSpecError(
		`invalid ${what} "${v}": use an RFC 3339 time (2026-11-24T10:00:00Z), unix seconds, or a duration such as 10m`,
	);
}

const entryMs = (e: LogEntry) => Date.parse(e.time.replace(/(\.\d{3})\d+/, "$1"));

/** The log files oldest first. */
function files(dir: string): string[] {
	const rotated = readdirSync(dir)
		.map((f) => /^container\.log\.(\d+)$/.exec(f))
		.filter((m): m is RegExpExecArray => !!m)
		.sort((a, b) => Number(b[1]) - Number(a[1]))
		.map((m) => join(dir, m[0]));
	return [...rotated, join(dir, "container.log")].filter((f) => existsSync(f));
}

function parseLines(text: string): LogEntry[] {
	const out: LogEntry[] = [];
	for (const line of text.split("\n")) {
		if (!line) continue;
		try {
			const e = JSON.parse(line) as LogEntry;
			if (typeof e.log === "string" && (e.stream === "stdout" || e.stream === "stderr")) out.push(e);
		} catch {} // a line being written right now; it is read again when complete
	}
	return out;
}

/** Everything logged so far, filtered. */
export function readLogs(dir: string, o: Omit<LogOptions, "follow" | "signal"> = {}): LogEntry[] {
	return filter(
		files(dir).flatMap((f) => parseLines(readFileSync(f, "utf8"))),
		o,
	);
}

function filter(all: LogEntry[], o: Omit<LogOptions, "follow" | "signal">): LogEntry[] {
	const since = o.since === undefined ? undefined : parseTime(o.since, "since");
	const until = o.until === undefined ? undefined : parseTime(o.until, "until");
	if (since !== undefined || until !== undefined)
		all = all.filter(
			(e) => (since === undefined || entryMs(e) >= since) && (until === undefined || entryMs(e) <= until),
		);
	return o.tail === undefined ? all : o.tail === 0 ? [] : all.slice(-o.tail);
}

/**
 * The log as it grows: what is there (filtered as readLogs), then new entries until `done()` says
 * the container has exited and everything is read, the signal aborts, or `until` passes. Follows
 * rotation by inode: the rest of a rotated file is read before the new one.
 */
export async function* followLogs(dir: string, o: LogOptions, done: () => boolean): AsyncGenerator<LogEntry> {
	const until = o.until === undefined ? undefined : parseTime(o.until, "until");
	const cur = join(dir, "container.log");
	let fd: number | undefined;
	let ino = 0;
	let pos = 0;
	let partial = "";
	// What exists now: the rotated files and the current one up to its last complete line; the
	// rest is followed from that offset, so nothing is shown twice or skipped.
	const existing: LogEntry[] = [];
	if (existsSync(cur)) {
		fd = openSync(cur, "r");
		ino = fstatSync(fd).ino;
		const text = readFileSync(fd, "utf8");
		const nl = text.lastIndexOf("\n");
		pos = Buffer.byteLength(text.slice(0, nl + 1));
		for (const f of files(dir).slice(0, -1)) existing.push(...parseLines(readFileSync(f, "utf8")));
		existing.push(...parseLines(text.slice(0, nl + 1)));
	}
	yield* filter(existing, o);
	const drain = function* (): Generator<LogEntry> {
		if (fd === undefined) return;
		const buf = Buffer.alloc(64 * 1024);
		for (;;) {
			const n = readSync(fd, buf, 0, buf.length, pos);
			if (n === 0) break;
			pos += n;
			partial += buf.subarray(0, n).toString("utf8");
			const nl = partial.lastIndexOf("\n");
			if (nl >= 0) {
				yield* parseLines(partial.slice(0, nl + 1));
				partial = partial.slice(nl + 1);
			}
		}
	};
	try {
		for (;;) {
			if (o.signal?.aborted) return;
			const finished = done();
			for (const e of drain()) {
				if (until !== undefined && entryMs(e) > until) return;
				yield e;
			}
			// Rotated: the old file is drained (through our fd, even if renamed or deleted); go on
			// with the next newer one, or the oldest left if ours was rotated away meanwhile.
			const now = existsSync(cur) ? statSync(cur).ino : undefined;
			if (now !== undefined && now !== ino) {
				const chain = files(dir).map((f) => ({ f, ino: statSync(f, { throwIfNoEntry: false })?.ino }));
				const k = chain.findIndex((x) => x.ino === ino);
				const next = chain[k + 1] ?? chain[0]!;
				if (fd !== undefined) closeSync(fd);
				fd = openSync(next.f, "r");
				ino = fstatSync(fd).ino;
				pos = 0;
				partial = "";
				continue;
			}
			if (finished) return;
			if (until !== undefined && Date.now() > until) return;
			await sleep(50, undefined, { signal: o.signal }).catch(() => {});
		}
	} finally {
		if (fd !== undefined) closeSync(fd);
	}
}
