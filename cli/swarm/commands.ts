// tsswarm agent/init/join/join-token/node ls: the agent runs in the foreground; the rest talk to it
// over its control socket.
import { Agent, call } from "../../agent/index.ts";
import { InterruptedError } from "../errors.ts";
import { printTable } from "../table.ts";

export async function runAgent(o: {
	listenAddr: string;
	advertiseAddr?: string;
	label?: Record<string, string>;
	dataRoot: string;
}): Promise<void> {
	const agent = new Agent({
		dataRoot: o.dataRoot,
		listen: o.listenAddr,
		advertise: o.advertiseAddr,
		labels: o.label,
		// The lab names its nodes n1, n2...: that is their hostname in the cluster.
		hostname: process.env.TSSWARM_HOSTNAME ?? process.env.TSSWARM_NODE,
	});
	await agent.start();
	const sig = await new Promise<NodeJS.Signals>((resolve) => {
		process.once("SIGINT", () => resolve("SIGINT"));
		process.once("SIGTERM", () => resolve("SIGTERM"));
	});
	// Stopping is not leaving: the others see this node down; it keeps its identity and place.
	await agent.stop();
	if (sig === "SIGINT") throw new InterruptedError(sig);
}

export async function init(o: {
	dataRoot: string;
	defaultAddrPool: string[];
	defaultAddrPoolMaskLength: number;
}): Promise<void> {
	const r = await call<{
		nodeId: string;
		clusterId: string;
		advertise: string;
		tokens: { manager: string; worker: string };
	}>(o.dataRoot, "POST", "/v1/init", {
		addrPools: o.defaultAddrPool.length ? o.defaultAddrPool : undefined,
		subnetSize: o.defaultAddrPoolMaskLength,
	});
	process.stdout.write(
		`Cluster ${r.clusterId} initialized: node ${r.nodeId} is now a manager.\n\n` +
			`To add a worker to this cluster, run:\n\n    tsswarm join --token ${r.tokens.worker} ${r.advertise}\n\n` +
			`To add a manager to this cluster, run 'tsswarm join-token manager' and follow the instructions.\n`,
	);
}

export async function join(addr: string, o: { token: string; dataRoot: string }): Promise<void> {
	const r = await call<{ clusterId: string; role: string }>(o.dataRoot, "POST", "/v1/join", { token: o.token, addr });
	process.stdout.write(`This node joined cluster ${r.clusterId} as a ${r.role}.\n`);
}

export async function joinToken(role: string, o: { rotate?: boolean; dataRoot: string }): Promise<void> {
	const r = await call<{ token: string }>(o.dataRoot, "POST", "/v1/join-token", { role, rotate: o.rotate ?? false });
	const info = await call<{ addrs: string[] }>(o.dataRoot, "GET", "/v1/info");
	const ma = info.addrs.map((a) => /\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(a)).find(Boolean);
	if (o.rotate) process.stdout.write(`Successfully rotated ${role} join token.\n\n`);
	process.stdout.write(
		`To add a ${role} to this cluster, run:\n\n    tsswarm join --token ${r.token} ${ma ? `${ma[1]}:${ma[2]}` : "<this node's IP:PORT>"}\n`,
	);
}

export async function nodeLs(o: { format: string; dataRoot: string }): Promise<void> {
	const nodes = await call<
		Array<{
			id: string;
			addr: string;
			state: string;
			role?: string;
			platform?: { os: string; architecture: string; variant?: string };
			self: boolean;
			version?: string;
			managerStatus?: string;
			labels?: Record<string, string>;
			hostname?: string;
			availability?: string;
			engineVersion?: string;
		}>
	>(o.dataRoot, "GET", "/v1/nodes");
	if (o.format === "json") {
		process.stdout.write(`${JSON.stringify(nodes)}\n`);
		return;
	}
	const status = (s: string) => ({ alive: "Ready", suspect: "Suspect", dead: "Down", left: "Left" })[s] ?? s;
	// HOSTNAME and AVAILABILITY come from the store: a manager has them, a worker shows blanks.
	const rows = [
		["ID", "HOSTNAME", "ADDRESS", "STATUS", "AVAILABILITY", "ROLE", "MANAGER STATUS", "PLATFORM", "ENGINE VERSION"],
	];
	for (const n of nodes.sort((a, b) => a.addr.localeCompare(b.addr))) {
		const p = n.platform ? [n.platform.os, n.platform.architecture, n.platform.variant].filter(Boolean).join("/") : "";
		const cap = (s?: string) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : "");
		rows.push([
			`${n.id.slice(0, 16)}${n.self ? " *" : ""}`,
			n.hostname ?? "",
			n.addr,
			status(n.state),
			cap(n.availability),
			n.role ?? "",
			n.managerStatus ?? "",
			p,
			n.engineVersion ?? n.version ?? "",
		]);
	}
	printTable(rows);
}

export async function nodeRm(ids: string[], o: { force?: boolean; dataRoot: string }): Promise<void> {
	for (const id of ids) {
		const r = await call<{ id: string }>(o.dataRoot, "POST", "/v1/nodes/rm", { id, force: Boolean(o.force) });
		process.stdout.write(`${r.id}\n`);
	}
}

export async function leave(o: { force?: boolean; dataRoot: string }): Promise<void> {
	const r = await call<{ left: string }>(o.dataRoot, "POST", "/v1/leave", { force: Boolean(o.force) });
	process.stdout.write(`Node left the cluster ${r.left}.\n`);
}
