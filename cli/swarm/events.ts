// tsswarm events: the cluster's changes as they happen (service, task, node, network ...), as docker
// prints them: `TIME TYPE ACTION ID (key=value, ...)`; --format json gives one object a line.
import { callStream } from "../../agent/api/index.ts";
import { parseTemplate, render } from "../format.ts";

interface ClusterEvent {
	time: string;
	type: string;
	action: string;
	id: string;
	attributes: Record<string, string>;
}

export async function events(o: {
	since?: string;
	until?: string;
	filter: string[];
	format?: string;
	dataRoot: string;
}): Promise<void> {
	const tpl = o.format && o.format !== "json" ? parseTemplate(o.format) : undefined;
	const ac = new AbortController();
	const stop = () => ac.abort();
	process.once("SIGINT", stop);
	process.once("SIGTERM", stop);
	try {
		await callStream(
			o.dataRoot,
			"/v1/events",
			{ since: o.since, until: o.until, filters: o.filter },
			(raw) => {
				const e = raw as ClusterEvent;
				if (o.format === "json") process.stdout.write(`${JSON.stringify(e)}\n`);
				else if (tpl) process.stdout.write(`${render(tpl, e)}\n`);
				else {
					const attrs = Object.entries(e.attributes)
						.map(([k, v]) => `${k}=${v}`)
						.join(", ");
					process.stdout.write(`${e.time} ${e.type} ${e.action} ${e.id}${attrs ? ` (${attrs})` : ""}\n`);
				}
			},
			{ signal: ac.signal },
		);
	} finally {
		process.off("SIGINT", stop);
		process.off("SIGTERM", stop);
	}
}
