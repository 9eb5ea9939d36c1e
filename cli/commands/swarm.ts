import type { Command } from "commander";
import { UsageError } from "../errors.ts";
import type { ListFlags } from "../format.ts";
import { collect, dataRoot, listOptions } from "./options.ts";

const ADDR = /^(\d{1,3}\.){3}\d{1,3}:\d{1,5}$/;
const ADDR_PORT_OPTIONAL = /^(\d{1,3}\.){3}\d{1,3}(:\d{1,5})?$/;

function parseBool(v: string): boolean {
	if (v === "true") return true;
	if (v === "false") return false;
	throw new UsageError(`invalid boolean "${v}": use true or false`);
}

function cidr(v: string): string {
	const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(v);
	if (!m || m.slice(1, 5).some((x) => Number(x) > 255) || Number(m[5]) > 32)
		throw new UsageError(`invalid address pool "${v}": use a CIDR such as 10.0.0.0/8`);
	return v;
}

function maskLength(v: string): number {
	const n = Number(v);
	if (!/^\d+$/.test(v) || n < 8 || n > 29) throw new UsageError(`invalid mask length "${v}": use 8 to 29`);
	return n;
}

function addr(v: string): string {
	if (!ADDR.test(v)) throw new UsageError(`invalid address "${v}": use IP:PORT, e.g. 198.18.0.1:2377`);
	return v;
}

/** IP or IP:PORT (the port defaults to 2377). */
function hostAddr(v: string): string {
	if (!ADDR_PORT_OPTIONAL.test(v)) throw new UsageError(`invalid address "${v}": use IP[:PORT], e.g. 198.18.0.1:2377`);
	return v;
}

/** --label key=value, repeatable. */
function label(v: string, acc: Record<string, string> = {}): Record<string, string> {
	const i = v.indexOf("=");
	if (i <= 0) throw new UsageError(`invalid label "${v}": use KEY=VALUE`);
	return { ...acc, [v.slice(0, i)]: v.slice(i + 1) };
}

export function registerSwarm(program: Command): void {
	program
		.command("agent")
		.description("run the agent on this machine (foreground; SIGINT/SIGTERM stop it cleanly)")
		.option("--listen-addr <ip[:port]>", "TCP (libp2p) and UDP (membership) address", hostAddr, "0.0.0.0:2377")
		.option(
			"--advertise-addr <ip[:port]>",
			"address other nodes reach this one at (default: the listen address; for 0.0.0.0 the default route's)",
			hostAddr,
		)
		.option("--label <key=value>", "node label, gossiped to the cluster (repeatable)", label)
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(
			async (o: { listenAddr: string; advertiseAddr?: string; label?: Record<string, string>; dataRoot: string }) => {
				const { runAgent } = await import("../swarm/commands.ts");
				await runAgent(o);
			},
		);
	program
		.command("init")
		.description("create a new cluster with this node as its first manager")
		.option(
			"--default-addr-pool <cidr>",
			"address pool for networks created without --subnet; repeatable (default 10.0.0.0/8)",
			(v: string, prev: string[]) => [...prev, cidr(v)],
			[] as string[],
		)
		.option("--default-addr-pool-mask-length <bits>", "prefix length of each network's subnet", maskLength, 24)
		.option(
			"--autolock",
			"seal the managers' keys with an unlock key (printed once): a restarted manager waits for `tsswarm unlock`",
		)
		.option(
			"--force-new-cluster",
			"disaster recovery on a manager whose cluster lost its quorum: it becomes the only manager, keeping every service, network and node",
		)
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(
			async (o: {
				dataRoot: string;
				defaultAddrPool: string[];
				defaultAddrPoolMaskLength: number;
				autolock?: boolean;
				forceNewCluster?: boolean;
			}) => {
				const { init, forceNewCluster } = await import("../swarm/commands.ts");
				if (!o.forceNewCluster) return init(o);
				if (o.defaultAddrPool.length > 0)
					throw new UsageError("--force-new-cluster keeps the cluster's address pools: drop --default-addr-pool");
				if (o.autolock)
					throw new UsageError("--force-new-cluster keeps the cluster's autolock setting: drop --autolock");
				await forceNewCluster(o);
			},
		);
	program
		.command("swarm")
		.description("the cluster's settings")
		.command("update")
		.description("change the cluster's settings")
		.option("--autolock [bool]", "true: managers restart locked until `tsswarm unlock`; false: they do not", parseBool)
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: { autolock?: boolean; dataRoot: string }) => {
			const { swarmUpdate } = await import("../swarm/autolock.ts");
			await swarmUpdate(o);
		});
	program
		.command("unlock-key")
		.description("print (or --rotate) the unlock key of an autolocked cluster")
		.option("--rotate", "replace the key; the old one no longer unlocks a manager once it has the new one")
		.option("-q, --quiet", "print the key only")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: { rotate?: boolean; quiet?: boolean; dataRoot: string }) => {
			const { unlockKey } = await import("../swarm/autolock.ts");
			await unlockKey(o);
		});
	program
		.command("unlock")
		.description("unlock a restarted manager of an autolocked cluster (the key from stdin or a prompt)")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: { dataRoot: string }) => {
			const { unlock } = await import("../swarm/autolock.ts");
			await unlock(o);
		});
	program
		.command("join")
		.description("join the cluster a manager at ADDR belongs to")
		.requiredOption("--token <token>", "join token (tsswarm join-token worker|manager on a manager)")
		.argument("<addr>", "a manager's IP:PORT", addr)
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (a: string, o: { token: string; dataRoot: string }) => {
			const { join } = await import("../swarm/commands.ts");
			await join(a, o);
		});
	program
		.command("join-token")
		.description("print (or --rotate) the join token for workers or managers")
		.argument("<role>", "worker or manager")
		.option("--rotate", "replace the token; the old one stops working")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (role: string, o: { rotate?: boolean; dataRoot: string }) => {
			if (role !== "worker" && role !== "manager")
				throw new UsageError(`role must be worker or manager, got "${role}"`);
			const { joinToken } = await import("../swarm/commands.ts");
			await joinToken(role, o);
		});
	program
		.command("events")
		.description("stream the cluster's events (services, tasks, nodes, networks) as they happen")
		.option("--since <time>", "replay events since (10m, 1h, an RFC 3339 time or unix seconds)")
		.option("--until <time>", "stop at this time (with --since: the past only)")
		.option("-f, --filter <key=value>", "type, event, service, node, id or name (repeatable)", collect, [])
		.option("--format <format>", "json, or a template such as '{{.Type}} {{.Action}}'")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: { since?: string; until?: string; filter: string[]; format?: string; dataRoot: string }) => {
			const { events } = await import("../swarm/events.ts");
			await events(o);
		});
	program
		.command("leave")
		.description("leave the cluster (stopping the agent does not: a stopped node is only down)")
		.option(
			"-f, --force",
			"leave even when this manager cannot hand its vote away, or is the last manager (the cluster state is lost)",
		)
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: { force?: boolean; dataRoot: string }) => {
			const { leave } = await import("../swarm/commands.ts");
			await leave(o);
		});
	program
		.command("info")
		.description("this node and its cluster: ids, role, managers, leader, nodes, Raft index")
		.option("--format <format>", "json or a Go template, e.g. '{{.clusterId}}'")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: { format?: string; dataRoot: string }) => {
			const { info } = await import("../swarm/commands.ts");
			await info(o);
		});
	const node = program.command("node").description("cluster nodes");
	listOptions(node.command("ls").alias("list").description("list nodes and their state"), [
		"id",
		"name",
		"role",
		"membership",
		"label",
	])
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: ListFlags & { dataRoot: string }) => {
			const { nodeLs } = await import("../swarm/commands.ts");
			await nodeLs(o);
		});
	node
		.command("rm")
		.description("remove nodes from the cluster: they are refused everywhere from then on")
		.argument("<node...>", "node ids (or unique prefixes of at least 6 characters)")
		.option("-f, --force", "remove a node that is still up")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (ids: string[], o: { force?: boolean; dataRoot: string }) => {
			const { nodeRm } = await import("../swarm/commands.ts");
			await nodeRm(ids, o);
		});
	node
		.command("inspect")
		.description("show nodes as a JSON array (default: this node)")
		.argument("[node...]", "ids, hostnames, unique id prefixes or self")
		.option("--pretty", "human-readable")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (refs: string[], o: { pretty?: boolean; dataRoot: string }) => {
			const { nodeInspect } = await import("../node/commands.ts");
			await nodeInspect(refs, o);
		});
	listOptions(
		node
			.command("ps")
			.description("list the tasks on nodes (default: this node)")
			.argument("[node...]", "ids, hostnames, unique id prefixes or self"),
		["desired-state", "node", "id", "name"],
	)
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (refs: string[], o: ListFlags & { dataRoot: string }) => {
			const { nodePs } = await import("../node/commands.ts");
			await nodePs(refs, o);
		});
	node
		.command("update")
		.description("change a node's availability or labels")
		.argument("<node>", "id, hostname, unique id prefix or self")
		.option("--availability <availability>", "active, pause or drain")
		.option("--label-add <key=value>", "add or change a node label (repeatable)", collect, [])
		.option("--label-rm <key>", "remove a node label (repeatable)", collect, [])
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(
			async (ref: string, o: { availability?: string; labelAdd: string[]; labelRm: string[]; dataRoot: string }) => {
				const { nodeUpdate } = await import("../node/commands.ts");
				await nodeUpdate(ref, o);
			},
		);
}
