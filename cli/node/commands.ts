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
				`Role:\t\t\t${n.role}`,
				`Role preference:\t${n.rolePreference}${n.roleReason ? ` (last change: ${n.roleReason})` : ""}`,
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

const ROLES = ["auto", "manager", "worker"];

export async function nodeUpdate(
	ref: string,
	o: { availability?: string; role?: string; labelAdd: string[]; labelRm: string[]; dataRoot: string },
): Promise<void> {
	if (o.availability === undefined && o.role === undefined && o.labelAdd.length === 0 && o.labelRm.length === 0)
		throw new UsageError("node update needs --availability, --role, --label-add or --label-rm");
	if (o.availability !== undefined && !["active", "pause", "drain"].includes(o.availability))
		throw new UsageError(`invalid --availability "${o.availability}": use active, pause or drain`);
	if (o.role !== undefined && !ROLES.includes(o.role))
		throw new UsageError(`invalid --role "${o.role}": use auto, manager or worker`);
	const update = {
		...(o.availability !== undefined ? { availability: o.availability } : {}),
		...(o.role !== undefined ? { role: o.role } : {}),
		labelAdd: labelPairs(o.labelAdd),
		labelRm: o.labelRm,
	};
	const n = await call<NodeInspect>(o.dataRoot, "POST", "/v1/nodes/update", { ref, update });
	process.stdout.write(`${n.hostname}\n`);
}

/** `node promote` / `node demote`: pin the role (autopilot carries it out: catch-up, vote, hand-off). */
export async function nodeSetRole(refs: string[], role: "manager" | "worker", o: { dataRoot: string }): Promise<void> {
	for (const ref of refs) {
		const n = await call<NodeInspect>(o.dataRoot, "POST", "/v1/nodes/update", {
			ref,
			update: { role, labelAdd: {}, labelRm: [] },
		});
		process.stdout.write(
			`Node ${n.hostname} pinned to the ${role} role; autopilot ${role === "manager" ? "promotes" : "demotes"} it.\n`,
		);
	}
}
