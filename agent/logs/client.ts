// The asking manager's side of /tsswarm/logs/1: one task's log from the node that runs it (from
// this node's own worker in-process: libp2p does not dial itself). A node that cannot be reached,
// or goes quiet, is a NodeUnreachableError within bounded time, never a hang (moby#33183).
import type { Host } from "../host/index.ts";
import { NodeUnreachableError, RemoteLogsError, TaskNotOnNodeError } from "./errors.ts";
import { type AskerMessage, LIMITS, LOGS_PROTOCOL, type LogLine, parseNodeMessage } from "./protocol.ts";
import type { LogSource } from "./serve.ts";

export interface TaskLogRequest {
	taskId: string;
	follow: boolean;
	tail?: number;
	since?: string;
}

/** Streams one task's log into onLines; resolves at its end (or when `signal` aborts). */
export type TaskLogFetcher = (
	nodeId: string,
	req: TaskLogRequest,
	onLines: (lines: LogLine[]) => void,
	signal: AbortSignal,
) => Promise<void>;

export interface LogsClientOptions {
	host: Host;
	/** Where nodes are (the node directory). */
	directory: { get(id: string): { addr: string } | undefined };
	self: string;
	/** This node's own tasks. */
	local: LogSource;
	/** How long the first answer may take (default 5 s); later, LIMITS.silenceMs between frames. */
	connectMs?: number;
	silenceMs?: number;
}

const FOREVER = 2_000_000_000;

export function logsClient(o: LogsClientOptions): TaskLogFetcher {
	return async (nodeId, req, onLines, signal) => {
		if (nodeId === o.self) return readLocal(o, req, onLines, signal);
		const entry = o.directory.get(nodeId);
		if (!entry) throw new NodeUnreachableError(nodeId, "it is not in the node directory");
		const quiet = new AbortController();
		let why = "";
		let timer: NodeJS.Timeout | undefined;
		const arm = (ms: number, what: string) => {
			clearTimeout(timer);
			timer = setTimeout(() => {
				why = what;
				quiet.abort();
			}, ms);
		};
		arm(o.connectMs ?? 5000, `no answer within ${o.connectMs ?? 5000} ms`);
		const silence = o.silenceMs ?? LIMITS.silenceMs;
		try {
			// By id (the peer store knows where it is now); the directory's address is a hint.
			await o.host.session(
				nodeId,
				LOGS_PROTOCOL,
				async (io) => {
					io.send({ t: "logs", ...req } satisfies AskerMessage);
					// Pings keep the node's stream (and its idle deadline) alive while it has nothing to say.
					const ping = setInterval(() => {
						try {
							io.send({ t: "ping" } satisfies AskerMessage);
						} catch {}
					}, LIMITS.pingMs);
					try {
						for (;;) {
							const m = parseNodeMessage(io.peer, await io.next());
							arm(silence, `nothing heard for ${silence} ms`);
							if (m.t === "entries") onLines(m.entries);
							else if (m.t === "end") return;
							else if (m.t === "error") throw new RemoteLogsError(nodeId, m.code, m.message);
						}
					} finally {
						clearInterval(ping);
					}
				},
				{ timeoutMs: FOREVER, signal: AbortSignal.any([signal, quiet.signal]), hint: entry.addr },
			);
		} catch (err) {
			if (signal.aborted) return;
			if (err instanceof RemoteLogsError || (err as Error).name === "BadLogsMessageError") throw err;
			throw new NodeUnreachableError(nodeId, why || (err as Error).message);
		} finally {
			clearTimeout(timer);
		}
	};
}

async function readLocal(
	o: LogsClientOptions,
	req: TaskLogRequest,
	onLines: (lines: LogLine[]) => void,
	signal: AbortSignal,
): Promise<void> {
	const lines = o.local(req.taskId, { ...req, signal });
	if (!lines) throw new TaskNotOnNodeError(req.taskId, o.self);
	let batch: LogLine[] = [];
	let flush: NodeJS.Immediate | undefined;
	for await (const e of lines) {
		if (signal.aborted) break;
		batch.push(e);
		flush ??= setImmediate(() => {
			flush = undefined;
			const b = batch;
			batch = [];
			if (b.length) onLines(b);
		});
	}
	if (flush) clearImmediate(flush);
	if (batch.length) onLines(batch);
}
