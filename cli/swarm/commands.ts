// tsswarm agent/init/join/join-token/leave/info/node ...: the agent runs in the foreground (its entry
// point, agent/main.ts); the rest talk to it over its local API.
import type { InfoResponse, NodeView } from "../../agent/api/types.ts";
import { client } from "../api.ts";
import { InterruptedError, UsageError } from "../errors.ts";
import { inspectPrinter, type ListFlags, type ListSpec, labelFilter, listPrinter, platformText } from "../format.ts";

export async function runAgent(o: {
	listenAddr: string;
	advertiseAddr?: string;
	label?: Record<string, string>;
	dataRoot: string;
}): Promise<void> {
	const { runAgent } = await import("../../agent/main.ts");
	const sig = await runAgent({
		dataRoot: o.dataRoot,
		listen: o.listenAddr,
		advertise: o.advertiseAddr,
		labels: o.label,
		// The lab names its nodes n1, n2...: that is their hostname in the cluster.
		hostname: process.env.TSSWARM_HOSTNAME ?? process.env.TSSWARM_NODE,
	});
	if (sig === "SIGINT") throw new InterruptedError(sig);
}

export async function init(o: {
	dataRoot: string;
	defaultAddrPool: string[];
	defaultAddrPoolMaskLength: number;
	autolock?: boolean;
}): Promise<void> {
	const r = await client(o).call("POST /v1/init", {
		body: {
			addrPools: o.defaultAddrPool.length ? o.defaultAddrPool : undefined,
			subnetSize: o.defaultAddrPoolMaskLength,
			...(o.autolock ? { autolock: true } : {}),
		},
	});
	process.stdout.write(
		`Cluster ${r.clusterId} initialized: node ${r.nodeId} is now a manager.\n\n` +
			`To add a worker to this cluster, run:\n\n    tsswarm join --token ${r.tokens.worker} ${r.advertise}\n\n` +
			`To add a manager to this cluster, run 'tsswarm join-token manager' and follow the instructions.\n`,
	);
	if (r.unlockKey) {
		const { unlockKeyText } = await import("./autolock.ts");
		process.stdout.write(`\n${unlockKeyText(r.unlockKey)}`);
	}
}

/** init --force-new-cluster: what the recovered manager kept, and who is out of the configuration. */
export async function forceNewCluster(o: { dataRoot: string }): Promise<void> {
	// Recovery replays this manager's whole log: give a big store on a slow disk its time.
	const r = await client(o).call("POST /v1/force-new-cluster", { body: {} }, { timeoutMs: 180_000 });
	const k = r.recovered.kept;
	const out = r.recovered.removed.map((s) => `${s.hostname ?? "?"} (${s.id})`);
	process.stdout.write(
		`Cluster ${r.clusterId} recovered: node ${r.nodeId} is now its only manager (Raft index ${r.recovered.index}, term ${r.raft?.term ?? r.recovered.term}).\n` +
			`Kept: ${k.services} service(s), ${k.networks} network(s), ${k.nodes} node(s), ${k.tasks} task(s), ${k.secrets} secret(s), ${k.configs} config(s).\n` +
			(out.length
				? `No longer in the Raft configuration: ${out.join(", ")}. Their records stay; remove the dead ones with 'tsswarm node rm', and add managers with 'tsswarm join-token manager'.\n`
				: ""),
	);
}

export async function join(addr: string, o: { token: string; dataRoot: string }): Promise<void> {
	const r = await client(o).call("POST /v1/join", { body: { token: o.token, addr } });
	process.stdout.write(`This node joined cluster ${r.clusterId} as a ${r.role}.\n`);
	if (r.role === "manager")
		process.stdout.write(
			"Its Raft replica catches up as a non-voter ('tsswarm node ls': Catching up); autopilot gives it the vote once it has caught up and stayed healthy for the stabilization time.\n",
		);
}

export async function joinToken(role: "manager" | "worker", o: { rotate?: boolean; dataRoot: string }): Promise<void> {
	const api = client(o);
	const r = await api.call("POST /v1/join-token", { body: { role, rotate: o.rotate ?? false } });
	const info = await api.call("GET /v1/info");
	const ma = info.addrs.map((a) => /\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(a)).find(Boolean);
	if (o.rotate) process.stdout.write(`Successfully rotated ${role} join token.\n\n`);
	process.stdout.write(
		`To add a ${role} to this cluster, run:\n\n    tsswarm join --token ${r.token} ${ma ? `${ma[1]}:${ma[2]}` : "<this node's IP:PORT>"}\n`,
	);
}

const STATUS: Record<string, string> = { alive: "Ready", suspect: "Suspect", dead: "Down", left: "Left" };
const cap = (s: string | null) => (s ? s[0]!.toUpperCase() + s.slice(1) : "");

/** node ls: docker's columns and filters (peer ids share their first 8 characters: 16 are shown). */
export const NODE_LS: ListSpec<NodeView> = {
	fields: {
		ID: (n) => n.id,
		Self: (n) => n.self,
		Hostname: (n) => n.hostname,
		Status: (n) => STATUS[n.state] ?? "Unknown",
		Availability: (n) => cap(n.availability),
		ManagerStatus: (n) => n.managerStatus,
		EngineVersion: (n) => n.engineVersion ?? "",
		Platform: (n) => platformText(n.platform),
		Addr: (n) => n.addr,
		Role: (n) => n.role,
		Labels: (n) => n.labels,
	},
	ids: { ID: 16 },
	columns: [
		{ header: "ID", field: "ID", value: (c) => `${c.ID}${c.Self ? " *" : ""}` },
		{ header: "HOSTNAME", field: "Hostname" },
		{ header: "STATUS", field: "Status" },
		{ header: "AVAILABILITY", field: "Availability" },
		{ header: "MANAGER STATUS", field: "ManagerStatus" },
		{ header: "ENGINE VERSION", field: "EngineVersion" },
		{ header: "PLATFORM", field: "Platform" },
	],
	quiet: "ID",
	filters: {
		id: (n, v) => n.id.startsWith(v),
		name: (n, v) => n.hostname.startsWith(v),
		role: (n, v) => {
			if (v !== "manager" && v !== "worker") throw new UsageError(`invalid filter role=${v}: manager or worker`);
			return n.role === v;
		},
		membership: (_, v) => {
			if (v !== "accepted" && v !== "pending")
				throw new UsageError(`invalid filter membership=${v}: accepted or pending`);
			return v === "accepted"; // a node is in the directory once it was admitted
		},
		label: (n, v) => labelFilter(n.labels, v),
	},
};

export async function nodeLs(o: ListFlags & { dataRoot: string }): Promise<void> {
	const print = listPrinter(NODE_LS, o);
	const nodes = await client(o).call("GET /v1/nodes");
	print(nodes.sort((a, b) => a.hostname.localeCompare(b.hostname) || a.addr.localeCompare(b.addr)));
}

export async function nodeRm(ids: string[], o: { force?: boolean; dataRoot: string }): Promise<void> {
	const api = client(o);
	for (const id of ids) {
		const r = await api.call("DELETE /v1/nodes/:id", { params: { id }, body: { force: Boolean(o.force) } });
		process.stdout.write(`${r.id}\n`);
	}
}

export async function leave(o: { force?: boolean; dataRoot: string }): Promise<void> {
	const r = await client(o).call("POST /v1/leave", { body: { force: Boolean(o.force) } });
	process.stdout.write(`Node left the cluster ${r.left}.\n`);
	const l = r.lost;
	if (l) {
		const orphans = l.orphans.map((n) => n.hostname).join(", ");
		process.stdout.write(
			`It was the last manager. Lost with it: the cluster state (${l.services} service(s), ${l.networks} network(s), ${l.tasks} task(s), ${l.secrets} secret(s), ${l.configs} config(s)).\n` +
				(l.orphans.length
					? `Orphaned: ${l.orphans.length} node(s) (${orphans}) keep running their tasks with no manager; run 'tsswarm leave' on them.\n`
					: ""),
		);
	}
}

/** tsswarm info: this node and its cluster, as `docker info`'s Swarm section shows them. */
export async function info(o: { format?: string; dataRoot: string }): Promise<void> {
	const print = o.format ? inspectPrinter(o.format) : undefined;
	const i = await client(o).call("GET /v1/info");
	if (o.format === "json") return void process.stdout.write(`${JSON.stringify(i)}\n`);
	if (print) return print([i]);
	process.stdout.write(infoText(i));
}

function infoText(i: InfoResponse): string {
	if (i.clusterId === null) return `Swarm: inactive\n NodeID: ${i.nodeId}\n`;
	if (i.locked)
		return `Swarm: locked\n NodeID: ${i.nodeId}\n ClusterID: ${i.clusterId}\n Run \`tsswarm unlock\` with the unlock key.\n`;
	const lines = [
		"Swarm: active",
		` NodeID: ${i.nodeId}`,
		` Is Manager: ${i.role === "manager"}`,
		` ClusterID: ${i.clusterId}`,
		` Managers: ${i.managers ?? "-"}`,
		` Nodes: ${i.directory.nodes}`,
		` Leader: ${i.leader === null ? "-" : `${i.leader}${i.leader === i.nodeId ? " (this node)" : ""}`}`,
		` Raft index: ${i.raft ? i.raft.index : "- (not a manager)"}`,
		` Raft term: ${i.raft ? i.raft.term : "-"}`,
		` Alive members: ${i.membership?.alive ?? "-"}`,
		` Tasks running here: ${i.tasksRunning ?? "-"}`,
		` Addresses: ${i.addrs.join(", ")}`,
	];
	return `${lines.join("\n")}\n`;
}

/** 90s, 5m, 1h, 1500ms (or plain milliseconds) to milliseconds. */
export function parseDuration(v: string, flag: string): number {
	const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
	if (!m) throw new UsageError(`invalid ${flag} "${v}": use a duration such as 30s, 5m or 1h`);
	return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "ms") as "ms"]);
}

function count(v: string, flag: string): number {
	if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 9) throw new UsageError(`invalid ${flag} "${v}": use 1 to 9`);
	return Number(v);
}

const showMs = (n: number) => (n % 60_000 === 0 ? `${n / 60_000}m` : n % 1000 === 0 ? `${n / 1000}s` : `${n}ms`);

/** `tsswarm swarm update`'s autopilot flags, written into the cluster record through the leader. */
export async function autopilotUpdate(o: {
	voters?: string;
	deadThreshold?: string;
	stabilization?: string;
	minQuorum?: string;
	dataRoot: string;
}): Promise<void> {
	const autopilot: Record<string, unknown> = {};
	if (o.voters !== undefined) autopilot.voters = o.voters === "auto" ? null : count(o.voters, "--voters");
	if (o.deadThreshold !== undefined)
		autopilot.deadServerThresholdMs = parseDuration(o.deadThreshold, "--dead-threshold");
	if (o.stabilization !== undefined) autopilot.stabilizationMs = parseDuration(o.stabilization, "--stabilization");
	if (o.minQuorum !== undefined) autopilot.minQuorum = count(o.minQuorum, "--min-quorum");
	if (Object.keys(autopilot).length === 0)
		throw new UsageError("swarm update needs --voters, --dead-threshold, --stabilization or --min-quorum");
	const s = await client(o).call("POST /v1/swarm/autopilot", { body: { autopilot } });
	process.stdout.write(
		`Autopilot: voters ${s.voters ?? "auto"}, dead threshold ${showMs(s.deadServerThresholdMs)}, ` +
			`stabilization ${showMs(s.stabilizationMs)}, min quorum ${s.minQuorum}\n`,
	);
}
