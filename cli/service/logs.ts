// tsswarm service logs: the agent (a manager) asks every node that runs a task of the service and
// streams the merged lines back as NDJSON; printed as docker does (`NAME.SLOT.TASKID@NODE    | line`,
// stderr lines on stderr). Tasks whose node cannot be reached are named on stderr; the rest print.
import { callStream } from "../../agent/api/index.ts";
import { CommandError, UsageError } from "../errors.ts";

interface LogTask {
	id: string;
	name: string;
	nodeId: string;
	node: string;
}

type LogItem =
	| { t: "log"; task: LogTask; stream: "stdout" | "stderr"; time: string; log: string }
	| { t: "unreachable"; task: LogTask; message: string }
	| { t: "error"; task: LogTask; code: string; message: string };

export interface LogsFlags {
	follow?: boolean;
	tail: string;
	since?: string;
	timestamps?: boolean;
	raw?: boolean;
	trunc?: boolean;
	dataRoot: string;
}

/** --tail: "all" or a count. */
export function parseTail(v: string): number | undefined {
	if (v === "all") return undefined;
	if (!/^\d+$/.test(v)) throw new UsageError(`invalid --tail "${v}": use a number of lines or all`);
	return Number(v);
}

export async function serviceLogs(ref: string, f: LogsFlags): Promise<void> {
	const tail = parseTail(f.tail);
	const missing = new Map<string, string>();
	const ac = new AbortController();
	process.once("SIGINT", () => ac.abort());
	const prefix = (t: LogTask) => `${t.name}.${f.trunc === false ? t.id : t.id.slice(0, 12)}@${t.node}`;
	await callStream(
		f.dataRoot,
		"/v1/services/logs",
		{ ref, follow: Boolean(f.follow), ...(tail !== undefined ? { tail } : {}), ...(f.since ? { since: f.since } : {}) },
		(raw) => {
			const item = raw as LogItem;
			if (item.t === "log") {
				const text = item.log.endsWith("\n") ? item.log : `${item.log}\n`;
				const out = `${f.timestamps ? `${item.time} ` : ""}${f.raw ? "" : `${prefix(item.task)}    | `}${text}`;
				(item.stream === "stderr" ? process.stderr : process.stdout).write(out);
			} else {
				missing.set(item.task.id, item.message);
				process.stderr.write(`tsswarm: no logs from task ${prefix(item.task)}: ${item.message}\n`);
			}
		},
		{ signal: ac.signal },
	);
	if (missing.size > 0 && !ac.signal.aborted)
		throw new CommandError(
			`the logs of ${missing.size} task${missing.size > 1 ? "s" : ""} could not be read (named above)`,
			"ERR_LOGS_PARTIAL",
		);
}
