import type { Command } from "commander";
import { UsageError } from "../errors.ts";

const DEFAULT_LAB = "lab";

function parseNodes(v: string): number {
	const n = Number(v);
	if (!/^\d+$/.test(v) || n < 1 || n > 250)
		throw new UsageError(`--nodes must be an integer from 1 to 250, got "${v}"`);
	return n;
}

function parseName(v: string): string {
	if (!/^[a-z0-9][a-z0-9-]{0,23}$/.test(v)) {
		throw new UsageError(`invalid lab name "${v}": use 1-24 lowercase letters, digits or dashes`);
	}
	return v;
}

function parsePlatforms(v: string): string[] {
	const list = v.split(",").map((p) => p.trim());
	const bad = list.find((p) => !/^linux\/(amd64|arm64)(\/v8)?$/.test(p));
	if (bad !== undefined) throw new UsageError(`--platforms: "${bad}" is not linux/amd64 or linux/arm64`);
	return list;
}

export function registerLab(program: Command): void {
	const lab = program
		.command("lab")
		.description("a real multi-node cluster on this machine, made of network namespaces (root only)");
	lab
		.command("up")
		.description("create a lab: N node namespaces on a hub bridge (198.18.0.k) and an OCI registry")
		.option("--nodes <n>", "number of nodes", parseNodes, 3)
		.option("--name <lab>", "lab name", parseName, DEFAULT_LAB)
		.option("--no-registry", "do not start the lab's registry at 198.18.0.254:5000")
		.option("--cluster", "start an agent in every node, init n1 and join the others (up to 3 managers)")
		.option(
			"--platforms <list>",
			"platforms of the nodes' agents, round robin (e.g. linux/amd64,linux/arm64; arm64 runs under qemu)",
			parsePlatforms,
		)
		.action(async (o: { nodes: number; name: string; registry: boolean; cluster?: boolean; platforms?: string[] }) => {
			if (o.platforms && !o.cluster) throw new UsageError("--platforms needs --cluster");
			const { labUp } = await import("../lab/commands.ts");
			await labUp({ nodes: o.nodes, name: o.name, registry: o.registry, cluster: o.cluster, platforms: o.platforms });
		});
	lab
		.command("ls")
		.description("list labs")
		.option("--json", "print JSON")
		.action(async (o: { json?: boolean }) => {
			const { labLs } = await import("../lab/commands.ts");
			labLs(o);
		});
	lab
		.command("exec")
		.description("run a command inside a lab node (n1, n2, ..., registry)")
		.option("--name <lab>", "lab name", parseName, DEFAULT_LAB)
		.argument("<node>", "node name or address")
		.argument("<cmd...>", "command and arguments (put -- before them)")
		.passThroughOptions()
		.action(async (node: string, cmd: string[], o: { name: string }) => {
			const { labExec } = await import("../lab/commands.ts");
			process.exitCode = await labExec(o.name, node, cmd);
		});
	// Failures on purpose, each idempotent: the node's agent (a cluster lab) or its underlay.
	const nodeActions = [
		["stop", "stop a cluster lab node's agent (SIGTERM; --kill: SIGKILL); it keeps its identity"],
		["start", "start a stopped node's agent again, with the same data root"],
		["cut", "drop all of a node's underlay traffic, both ways (TCP, UDP gossip, VXLAN, ARP)"],
		["heal", "undo lab cut"],
	] as const;
	for (const [action, description] of nodeActions) {
		const cmd = lab
			.command(action)
			.description(description)
			.option("--name <lab>", "lab name", parseName, DEFAULT_LAB)
			.argument("<node>", "node name or address");
		if (action === "stop") cmd.option("--kill", "SIGKILL instead of SIGTERM (a crash, not a shutdown)");
		if (action === "start")
			cmd.option("--addr <ip>", "move the node to this underlay address first (198.18.x.y; as a DHCP renewal)");
		cmd.action(async (node: string, o: { name: string; kill?: boolean; addr?: string }) => {
			const { labNodeAction } = await import("../lab/commands.ts");
			await labNodeAction(action, { name: o.name, node, kill: o.kill, addr: o.addr });
		});
	}
	lab
		.command("down")
		.description("remove a lab and everything it made; also sweeps labs left by crashed runs")
		.option("--name <lab>", "lab name", parseName, DEFAULT_LAB)
		.option("--all", "remove every lab")
		.action(async (o: { name: string; all?: boolean }) => {
			const { labDown } = await import("../lab/commands.ts");
			await labDown(o);
		});
	lab
		.command("demo")
		.description("bring up a 3-node lab with its registry, show it working, and tear it down")
		.option("--nodes <n>", "number of nodes", parseNodes, 3)
		.option("--name <lab>", "lab name", parseName, "demo")
		.option("--keep", "leave the lab up afterwards (remove it with tsswarm lab down --name demo)")
		.action(async (o: { nodes: number; name: string; keep?: boolean }) => {
			const { labDemo } = await import("../lab/demo.ts");
			await labDemo({ nodes: o.nodes, name: o.name, keep: o.keep ?? false });
		});
}
