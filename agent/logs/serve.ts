// The node's side of /tsswarm/logs/1: every node serves the logs of its own tasks' containers to
// managers (and only to them: the directory says who is one). One request per stream; entries go
// out in bounded batches, waiting on the stream's drain, and the reading stops with the stream.
import type { HandlerContext, Host } from "../host/index.ts";
import { BadLogsMessageError, LogsNotManagerError, TaskNotOnNodeError } from "./errors.ts";
import { FrameBatcher, LIMITS, LOGS_PROTOCOL, type LogLine, type NodeMessage, parseAskerMessage } from "./protocol.ts";

export interface LogReadOptions {
	follow: boolean;
	tail?: number;
	since?: string;
	signal: AbortSignal;
}

/** A task's log on this node, or undefined when no container of that task is here. */
export type LogSource = (taskId: string, o: LogReadOptions) => AsyncIterable<LogLine> | undefined;

export interface ServeLogsOptions {
	host: Host;
	/** Who is a manager (the node directory). */
	directory: { isManager(id: string): boolean };
	source: LogSource;
	self: string;
	logger: { warn(obj: object, msg?: string): void };
}

/** The log of one task through `source`, as frames; errors become one named `error` frame. */
export async function streamTask(
	o: Pick<ServeLogsOptions, "source" | "self">,
	req: { taskId: string; follow: boolean; tail?: number; since?: string },
	send: (m: NodeMessage) => Promise<void>,
	signal: AbortSignal,
): Promise<void> {
	let lines: AsyncIterable<LogLine> | undefined;
	try {
		lines = o.source(req.taskId, { ...req, signal });
		if (!lines) throw new TaskNotOnNodeError(req.taskId, o.self);
		const batcher = new FrameBatcher();
		// A burst of lines (what is there, or what a poll found) goes out together, as few frames as fit.
		let flush: NodeJS.Immediate | undefined;
		let sending = Promise.resolve();
		const out = (entries: LogLine[]) => {
			sending = sending.then(() => send({ t: "entries", entries }));
			return sending;
		};
		for await (const e of lines) {
			if (signal.aborted) return;
			for (const b of batcher.add(e)) await out(b);
			flush ??= setImmediate(() => {
				flush = undefined;
				const b = batcher.take();
				if (b) void out(b).catch(() => {});
			});
		}
		if (flush) clearImmediate(flush);
		const b = batcher.take();
		if (b) await out(b);
		await sending;
		if (!signal.aborted) await send({ t: "end" });
	} catch (err) {
		if (signal.aborted) return;
		const e = err as { code?: unknown; message?: unknown };
		await send({
			t: "error",
			code: typeof e.code === "string" && /^[A-Z0-9_]+$/.test(e.code) ? e.code : "ERR_LOGS",
			message: String(e.message ?? err).slice(0, LIMITS.messageChars),
		}).catch(() => {});
	}
}

export async function serveLogs(o: ServeLogsOptions): Promise<() => Promise<void>> {
	const started = new WeakSet<HandlerContext>();
	const heard = new WeakMap<HandlerContext, number>();
	await o.host.handle(LOGS_PROTOCOL, async (raw, ctx) => {
		heard.set(ctx, Date.now());
		const refuse = (err: Error & { code: string }) => {
			o.logger.warn({ peer: ctx.peer, protocol: LOGS_PROTOCOL, code: err.code }, err.message);
			ctx.send({ t: "error", code: err.code, message: err.message } satisfies NodeMessage);
			ctx.close();
		};
		let msg: ReturnType<typeof parseAskerMessage>;
		try {
			msg = parseAskerMessage(ctx.peer, raw);
		} catch (err) {
			return refuse(err as BadLogsMessageError);
		}
		if (msg.t === "ping") return;
		if (started.has(ctx)) return refuse(new BadLogsMessageError(ctx.peer, "one logs request per stream"));
		started.add(ctx);
		if (!o.directory.isManager(ctx.peer)) return refuse(new LogsNotManagerError(ctx.peer));
		const stop = new AbortController();
		const signal = AbortSignal.any([ctx.signal, stop.signal]);
		// While following, ping the manager and give it up when it goes quiet (cut off, gone).
		const timer = msg.follow
			? setInterval(() => {
					if (Date.now() - (heard.get(ctx) ?? 0) > LIMITS.silenceMs) stop.abort();
					else if (!signal.aborted) {
						try {
							ctx.send({ t: "ping" } satisfies NodeMessage);
						} catch {
							stop.abort(); // the stream is gone
						}
					}
				}, LIMITS.pingMs)
			: undefined;
		timer?.unref();
		const send = async (m: NodeMessage) => {
			if (signal.aborted) return;
			try {
				ctx.send(m);
				await ctx.drain();
			} catch (err) {
				stop.abort();
				throw err;
			}
		};
		try {
			await streamTask(o, msg, send, signal);
		} finally {
			clearInterval(timer);
			ctx.close();
		}
	});
	return () => o.host.unhandle(LOGS_PROTOCOL);
}
