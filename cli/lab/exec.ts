// Running a command inside a lab node's namespace, with the node's own data dir and identity.
import { spawn } from "node:child_process";
import { LabNotFoundError, NodeNotFoundError } from "./errors.ts";
import { REGISTRY_NODE } from "./names.ts";
import { type RunResult, run } from "./shell.ts";
import { type LabNode, type LabRecord, labRoot, readRecord } from "./state.ts";

const cliDir = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

export function findNode(rec: LabRecord, node: string): LabNode {
	const found = rec.nodes.find((n) => n.name === node || n.address === node);
	if (found) return found;
	if (rec.registry && (node === REGISTRY_NODE || node === rec.registry.address)) {
		return { name: REGISTRY_NODE, netns: rec.registry.netns, address: rec.registry.address, dir: rec.registry.dataDir };
	}
	throw new NodeNotFoundError(rec.name, node, [
		...rec.nodes.map((n) => n.name),
		...(rec.registry ? [REGISTRY_NODE] : []),
	]);
}

/** Environment a process inside a lab node sees: where its data goes and where its cgroups go. */
export function labNodeEnv(rec: LabRecord, node: LabNode): NodeJS.ProcessEnv {
	return {
		...process.env,
		// `tsswarm` in a node is this checkout's (lab exec n2 -- tsswarm node ls).
		PATH: `${cliDir}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`,
		TSSWARM_LAB: rec.name,
		TSSWARM_NODE: node.name,
		TSSWARM_DATA_ROOT: node.dir,
		TSSWARM_CGROUP_PARENT: `${node.netns}`,
		// The worker's overlay sandboxes and task namespaces carry the node's name, so lab down
		// (and the sweep after a killed run) removes them with the lab's own.
		TSSWARM_NETNS_PREFIX: node.netns,
		...(rec.registry ? { TSSWARM_INSECURE_REGISTRIES: `${rec.registry.address}:${rec.registry.port}` } : {}),
	};
}

export function loadLab(name: string, root = labRoot()): LabRecord {
	const rec = readRecord(root, name);
	if (!rec) throw new LabNotFoundError(name);
	return rec;
}

/**
 * The argv that runs a command in a node. nsenter joins only the network namespace: `ip netns
 * exec` also remounts /sys in a private mount namespace, which hides the cgroup mounts runc needs.
 */
export function netnsArgv(rec: LabRecord, node: string, argv: readonly string[]): string[] {
	return ["nsenter", `--net=/run/netns/${findNode(rec, node).netns}`, "--", ...argv];
}

/** Runs argv in the node and collects its output (for tests and scripted use). */
export function execInNode(
	rec: LabRecord,
	node: string,
	argv: readonly string[],
	opts: { signal?: AbortSignal; input?: string } = {},
): Promise<RunResult> {
	const n = findNode(rec, node);
	return run(netnsArgv(rec, node, argv), {
		allowFailure: true,
		env: labNodeEnv(rec, n),
		signal: opts.signal,
		input: opts.input,
	});
}

/** Runs argv in the node with the terminal attached; resolves with its exit code (signals as 128+n). */
export function execInteractive(rec: LabRecord, node: string, argv: readonly string[]): Promise<number> {
	const n = findNode(rec, node);
	return new Promise((resolve, reject) => {
		const [cmd, ...args] = netnsArgv(rec, node, argv);
		const child = spawn(cmd!, args, { stdio: "inherit", env: labNodeEnv(rec, n) });
		child.on("error", reject);
		child.on("close", (code, sig) => resolve(code ?? 128 + (sig ? signalNumber(sig) : 0)));
	});
}

function signalNumber(sig: NodeJS.Signals): number {
	const table: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
	return table[sig] ?? 1;
}
