// tsswarm node inspect/ps/update: talk to the local agent (a manager); node refs are ids, hostnames,
// unique id prefixes or `self`. update goes through the leader.
import type { NodeInspect } from "../../agent/api/index.ts";
import { call } from "../../agent/api/index.ts";
import { UsageError } from "../errors.ts";
import type { ListFlags } from "../format.ts";
import { printTasks } from "../service/commands.ts";

export async function nodeInspect(refs: string[], o: { pretty?: boolean; dataRoot: string }): Promise<void> {
	const nodes = await call<NodeInspect[]>(o.dataRoot, "POST", "/v1/nodes/inspect", { refs });
	if (!o.pretty) return void process.stdout.write(`${JSON.stringify(nodes, null, 4)}\n`);
	for (const n of nodes) {
		const p = [n.platform.os, n.platform.architecture, n.platform.variant].filter(Boolean).join("/");
		const labels = Object.entries(n.labels);
		process.stdout.write(
			[
				`ID:\t\t\t${n.id}`,
				`Hostname:\t\t${n.hostname}`,
				`Joined at:\t\t${n.createdAt}`,
				"Status:",
				` State:\t\t\t${n.status?.state ?? "unknown"}`,
				` Availability:\t\t${n.availability}`,
				` Address:\t\t${n.addr}`,
				...(n.managerStatus
					? [
							"Manager Status:",
							` Address:\t\t${n.managerStatus.addr}`,
							` Raft Status:\t\t${n.managerStatus.reachability}`,
							` Leader:\t\t${n.managerStatus.leader ? "Yes" : "No"}`,
						]
					: []),
				...(labels.length ? ["Labels:", ...labels.map(([k, v]) => ` - ${k}=${v}`)] : []),
				`Platform:\t\t${p}`,
				"Resources:",
				` CPUs:\t\t\t${n.resources.nanoCpus / 1e9}`,
				` Memory:\t\t${(n.resources.memoryBytes / 2 ** 30).toFixed(1)}GiB`,
				`Engine Version:\t\t${n.engineVersion}`,
				"",
			].join("\n"),
		);
	}
}

export async function nodePs(refs: string[], o: ListFlags & { dataRoot: string }): Promise<void> {
	const rows = [];
	for (const ref of refs.length ? refs : ["self"])
		rows.push(...(await call<Parameters<typeof printTasks>[0]>(o.dataRoot, "POST", "/v1/nodes/ps", { ref })));
	printTasks(rows, o);
}

/** --label-add k=v (or k: an empty value, as docker), repeatable. */
function labelPairs(list: string[]): Record<string, string> {
	const out: Record<string, string> = {};
	for (const l of list) {
		const i = l.indexOf("=");
		const k = i < 0 ? l : l.slice(0, i);
		if (!k) throw new UsageError(`invalid --label-add "${l}": use KEY=VALUE`);
		out[k] = i < 0 ? "" : l.slice(i + 1);
	}
	return out;
}

export async function nodeUpdate(
	ref: string,
	o: { availability?: string; labelAdd: string[]; labelRm: string[]; dataRoot: string },
): Promise<void> {
	if (o.availability === undefined && o.labelAdd.length === 0 && o.labelRm.length === 0)
		throw new UsageError("node update needs --availability, --label-add or --label-rm");
	if (o.availability !== undefined && !["active", "pause", "drain"].includes(o.availability))
		throw new UsageError(`invalid --availability "${o.availability}": use active, pause or drain`);
	const update = {
		...(o.availability !== undefined ? { availability: o.availability } : {}),
		labelAdd: labelPairs(o.labelAdd),
		labelRm: o.labelRm,
	};
	const n = await call<NodeInspect>(o.dataRoot, "POST", "/v1/nodes/update", { ref, update });
	process.stdout.write(`${n.hostname}\n`);
}
