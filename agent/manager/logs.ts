// `service logs` on the manager that serves the CLI: the store says which node runs which task;
// each task's log comes from its node over /tsswarm/logs/1 (agent/logs), and the streams merge
// here. A Down node's tasks are named unreachable at once and the others still stream (moby#33183).
import { LIMITS, type LogLine, NodeUnreachableError, type TaskLogFetcher } from "../logs/index.ts";
import type { Task } from "../services/index.ts";
import { type ClusterStore, NotFoundError } from "../store/index.ts";
import { InvalidServiceRequestError } from "./errors.ts";
import { findService } from "./services.ts";

export interface LogsQuery {
	ref: string;
	follow: boolean;
	tail?: number;
	since?: string;
}

/** Which task a line or notice is about. */
export interface LogTask {
	id: string;
	/** SERVICE.SLOT (global: SERVICE.NODEID), as service ps names it. */
	name: string;
	nodeId: string;
	/** The node's hostname (its id when the record is gone). */
	node: string;
}

export type LogItem =
	| ({ t: "log"; task: LogTask } & LogLine)
	/** The task's node could not be asked (down, cut off, its agent stopped). */
	| { t: "unreachable"; task: LogTask; message: string }
	/** The node answered with an error for this task (its container is gone, ...). */
	| { t: "error"; task: LogTask; code: string; message: string };

const SINCE = [
	/^\d+(\.\d+)?$/,
	/^\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/,
	/^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/,
];

/** The CLI's request, checked before any node is asked. */
export function parseLogsQuery(b: Record<string, unknown>): LogsQuery {
	const bad = (why: string): never => {
		throw new InvalidServiceRequestError(`invalid logs request: ${why}`, "ERR_INVALID_LOGS");
	};
	if (typeof b.ref !== "string" || b.ref === "") bad("name a service or a task");
	if (b.follow !== undefined && typeof b.follow !== "boolean") bad("follow must be true or false");
	const tail = b.tail;
	if (tail !== undefined && (!Number.isSafeInteger(tail) || (tail as number) < 0 || (tail as number) > LIMITS.maxTail))
		bad(`--tail must be an integer from 0 to ${LIMITS.maxTail}, got ${String(tail)}`);
	const since = b.since;
	if (
		since !== undefined &&
		(typeof since !== "string" || since.length > LIMITS.sinceChars || !SINCE.some((re) => re.test(since)))
	)
		bad(
			`--since ${JSON.stringify(since)?.slice(0, 64)}: use an RFC 3339 time (2026-11-24T10:00:00Z), unix seconds, or a duration such as 10m`,
		);
	return {
		ref: b.ref as string,
		follow: b.follow === true,
		...(tail !== undefined ? { tail: tail as number } : {}),
		...(since !== undefined ? { since: since as string } : {}),
	};
}

/** The tasks a logs request covers: a service's (those that got a container) or one task. */
export function logTasks(store: ClusterStore, ref: string): Task[] {
	let tasks: Task[];
	try {
		const s = findService(store, ref);
		tasks = store.find("tasks", { by: "serviceId", value: s.id }).map((r) => r.value);
	} catch (err) {
		if (!(err instanceof NotFoundError)) throw err;
		const exact = store.get("tasks", ref)?.value;
		const prefixed = ref.length >= 6 ? store.list("tasks").filter((r) => r.id.startsWith(ref)) : [];
		if (!exact && prefixed.length > 1) throw new InvalidServiceRequestError(`task id prefix ${ref} is ambiguous`);
		const t = exact ?? prefixed[0]?.value;
		if (!t) throw new NotFoundError("service or task", ref);
		tasks = [t];
	}
	return tasks
		.filter((t) => t.nodeId && t.status.containerId)
		.sort((a, b) => (a.slot ?? 0) - (b.slot ?? 0) || Date.parse(a.createdAt) - Date.parse(b.createdAt));
}

/** A small unbounded queue between the node streams and the one consumer. */
class Queue<T> {
	private items: T[] = [];
	private wake: (() => void) | undefined;
	private ended = false;
	push(x: T): void {
		this.items.push(x);
		this.wake?.();
	}
	end(): void {
		this.ended = true;
		this.wake?.();
	}
	async *drain(signal: AbortSignal): AsyncGenerator<T> {
		const onAbort = () => this.wake?.();
		signal.addEventListener("abort", onAbort);
		try {
			for (;;) {
				while (this.items.length > 0) yield this.items.shift()!;
				if (this.ended || signal.aborted) return;
				await new Promise<void>((r) => {
					this.wake = r;
				});
				this.wake = undefined;
			}
		} finally {
			signal.removeEventListener("abort", onAbort);
		}
	}
}

/**
 * The merged log of a service or task. Without follow, the lines of all tasks in time order after
 * the notices; with follow, as they come. Ends when every task's stream has (never, for a running
 * service followed) or when `signal` aborts.
 */
export function serviceLogs(
	store: ClusterStore,
	fetch: TaskLogFetcher,
	q: LogsQuery,
	signal: AbortSignal,
): AsyncGenerator<LogItem> {
	// Resolved now: an unknown service is an error answer, not an empty stream.
	return mergeLogs(store, fetch, logTasks(store, q.ref), q, signal);
}

async function* mergeLogs(
	store: ClusterStore,
	fetch: TaskLogFetcher,
	tasks: Task[],
	q: LogsQuery,
	signal: AbortSignal,
): AsyncGenerator<LogItem> {
	const queue = new Queue<LogItem>();
	const inner = new AbortController();
	const both = AbortSignal.any([signal, inner.signal]);
	const runs = tasks.map(async (t) => {
		const rec = store.get("nodes", t.nodeId!)?.value;
		const task: LogTask = {
			id: t.id,
			name: `${t.serviceName}.${t.slot ?? t.nodeId}`,
			nodeId: t.nodeId!,
			node: rec?.hostname ?? t.nodeId!,
		};
		if (!rec)
			return queue.push({
				t: "unreachable",
				task,
				message: `unreachable: node ${t.nodeId} is no longer in the cluster`,
			});
		if (rec.status?.state === "down")
			return queue.push({ t: "unreachable", task, message: `unreachable: node ${rec.hostname} is down` });
		try {
			await fetch(
				t.nodeId!,
				{
					taskId: t.id,
					follow: q.follow,
					...(q.tail !== undefined ? { tail: q.tail } : {}),
					...(q.since !== undefined ? { since: q.since } : {}),
				},
				(lines) => {
					for (const l of lines) queue.push({ t: "log", task, ...l });
				},
				both,
			);
		} catch (err) {
			const e = err as Error & { code?: string };
			if (e instanceof NodeUnreachableError) queue.push({ t: "unreachable", task, message: `unreachable: ${e.why}` });
			else queue.push({ t: "error", task, code: e.code ?? "ERR_LOGS", message: e.message });
		}
	});
	void Promise.allSettled(runs).then(() => queue.end());
	try {
		if (q.follow) {
			yield* queue.drain(signal);
			return;
		}
		const lines: LogItem[] = [];
		for await (const item of queue.drain(signal)) {
			if (item.t === "log") lines.push(item);
			else yield item;
		}
		// Stable: one task's lines keep their order when two share a time.
		lines.sort((a, b) =>
			(a as LogLine).time < (b as LogLine).time ? -1 : (a as LogLine).time > (b as LogLine).time ? 1 : 0,
		);
		yield* lines;
	} finally {
		inner.abort();
	}
}
