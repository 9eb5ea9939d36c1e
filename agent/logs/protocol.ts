// The messages of /tsswarm/logs/1 and their checks. A manager (the one serving `service logs`)
// opens one stream per task to the node that runs it: one request, then entries in bounded
// batches, then `end` (or an error). While following, both ends ping so a vanished peer is noticed.
import { BadLogsMessageError } from "./errors.ts";

export const LOGS_PROTOCOL = "/tsswarm/logs/1";

export const LIMITS = {
	/** Entries in one frame. */
	entriesPerFrame: 512,
	/** Bytes of entry text put into one frame before the next one starts. */
	frameBytes: 256 << 10,
	/** Characters of one entry's text; longer lines are sent as several entries. */
	lineChars: 16 << 10,
	taskIdChars: 64,
	sinceChars: 64,
	maxTail: 1_000_000,
	codeChars: 64,
	messageChars: 1024,
	/** While following: each end pings this often... */
	pingMs: 5000,
	/** ...and gives the other up after this long without a frame. */
	silenceMs: 20_000,
} as const;

/** One line of a task's output, as the runtime logged it (RFC 3339 time with nanoseconds). */
export interface LogLine {
	stream: "stdout" | "stderr";
	time: string;
	log: string;
}

export interface LogsRequest {
	t: "logs";
	taskId: string;
	follow: boolean;
	tail?: number;
	since?: string;
}

export type AskerMessage = LogsRequest | { t: "ping" };

export type NodeMessage =
	| { t: "entries"; entries: LogLine[] }
	| { t: "ping" }
	| { t: "end" }
	| { t: "error"; code: string; message: string };

const TASK_ID = /^[a-zA-Z0-9][a-zA-Z0-9_-]*$/;
const SINCE = /^[0-9A-Za-z:.+-]+$/;
const TIME = /^\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:\d{2})$/;
const CODE = /^[A-Z0-9_]+$/;

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);
const show = (v: unknown) => (JSON.stringify(v) ?? String(v)).slice(0, 64);

function onlyFields(bad: (why: string) => never, raw: Record<string, unknown>, known: readonly string[]): void {
	for (const k of Object.keys(raw)) if (!known.includes(k)) bad(`unknown field ${show(k)}`);
}

/** On the node asked: a frame from `peer`. Throws BadLogsMessageError naming the peer. */
export function parseAskerMessage(peer: string, raw: unknown): AskerMessage {
	const bad = (why: string): never => {
		throw new BadLogsMessageError(peer, why);
	};
	if (!isObject(raw)) return bad("expected an object with a type `t`");
	if (raw.t === "ping") {
		onlyFields(bad, raw, ["t"]);
		return { t: "ping" };
	}
	if (raw.t !== "logs") return bad(`unknown message type ${show(raw.t)}`);
	onlyFields(bad, raw, ["t", "taskId", "follow", "tail", "since"]);
	const { taskId, follow, tail, since } = raw;
	if (typeof taskId !== "string" || taskId.length > LIMITS.taskIdChars || !TASK_ID.test(taskId))
		bad(`taskId must be 1 to ${LIMITS.taskIdChars} letters, digits, _ or -`);
	if (typeof follow !== "boolean") bad("follow must be true or false");
	if (tail !== undefined && (!Number.isSafeInteger(tail) || (tail as number) < 0 || (tail as number) > LIMITS.maxTail))
		bad(`tail must be an integer from 0 to ${LIMITS.maxTail}`);
	if (since !== undefined && (typeof since !== "string" || since.length > LIMITS.sinceChars || !SINCE.test(since)))
		bad(`since must be a time or a duration of at most ${LIMITS.sinceChars} characters`);
	return {
		t: "logs",
		taskId: taskId as string,
		follow: follow as boolean,
		...(tail !== undefined ? { tail: tail as number } : {}),
		...(since !== undefined ? { since: since as string } : {}),
	};
}

function parseLine(bad: (why: string) => never, raw: unknown, i: number): LogLine {
	if (!isObject(raw)) return bad(`entry ${i} is not an object`);
	onlyFields((why) => bad(`entry ${i}: ${why}`), raw, ["stream", "time", "log"]);
	if (raw.stream !== "stdout" && raw.stream !== "stderr") bad(`entry ${i}: stream must be stdout or stderr`);
	if (typeof raw.time !== "string" || raw.time.length > 40 || !TIME.test(raw.time))
		bad(`entry ${i}: time must be an RFC 3339 time`);
	if (typeof raw.log !== "string" || raw.log.length > LIMITS.lineChars)
		bad(`entry ${i}: log must be a string of at most ${LIMITS.lineChars} characters`);
	return { stream: raw.stream as LogLine["stream"], time: raw.time as string, log: raw.log as string };
}

/** On the asking manager: a frame from node `peer`. Throws BadLogsMessageError naming the peer. */
export function parseNodeMessage(peer: string, raw: unknown): NodeMessage {
	const bad = (why: string): never => {
		throw new BadLogsMessageError(peer, why);
	};
	if (!isObject(raw)) return bad("expected an object with a type `t`");
	switch (raw.t) {
		case "ping":
		case "end":
			onlyFields(bad, raw, ["t"]);
			return { t: raw.t };
		case "entries": {
			onlyFields(bad, raw, ["t", "entries"]);
			const e = raw.entries;
			if (!Array.isArray(e) || e.length === 0) return bad("entries must be a non-empty list");
			if (e.length > LIMITS.entriesPerFrame) bad(`more than ${LIMITS.entriesPerFrame} entries in one frame`);
			return { t: "entries", entries: e.map((x: unknown, i) => parseLine(bad, x, i)) };
		}
		case "error": {
			onlyFields(bad, raw, ["t", "code", "message"]);
			if (typeof raw.code !== "string" || raw.code.length > LIMITS.codeChars || !CODE.test(raw.code))
				bad("error needs a code of capitals, digits and _");
			if (typeof raw.message !== "string") bad("error needs a message");
			return { t: "error", code: raw.code as string, message: (raw.message as string).slice(0, LIMITS.messageChars) };
		}
		default:
			return bad(`unknown message type ${show(raw.t)}`);
	}
}

/** A line as frames carry it: text longer than lineChars becomes several entries, same time. */
export function splitLine(e: LogLine): LogLine[] {
	if (e.log.length <= LIMITS.lineChars) return [{ stream: e.stream, time: e.time, log: e.log }];
	const out: LogLine[] = [];
	for (let i = 0; i < e.log.length; i += LIMITS.lineChars)
		out.push({ stream: e.stream, time: e.time, log: e.log.slice(i, i + LIMITS.lineChars) });
	return out;
}

/** Groups lines into frames within entriesPerFrame and frameBytes. */
export class FrameBatcher {
	private lines: LogLine[] = [];
	private bytes = 0;

	/** Adds a line; returns a full batch to send when this one filled it. */
	add(e: LogLine): LogLine[][] {
		const out: LogLine[][] = [];
		for (const part of splitLine(e)) {
			if (this.lines.length >= LIMITS.entriesPerFrame || this.bytes + part.log.length > LIMITS.frameBytes) {
				const b = this.take();
				if (b) out.push(b);
			}
			this.lines.push(part);
			this.bytes += part.log.length;
		}
		return out;
	}

	/** What is gathered so far, if anything. */
	take(): LogLine[] | undefined {
		if (this.lines.length === 0) return undefined;
		const b = this.lines;
		this.lines = [];
		this.bytes = 0;
		return b;
	}
}
