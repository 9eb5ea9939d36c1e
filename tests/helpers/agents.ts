// Agents in a lab for tests, started by the test itself (to pass its own flags): one real
// `tsswarm agent` per node, in the node's namespace, with its own data root; the lab's teardown
// ends whatever is left, and stop() ends one by pid. `withLab(t, {cluster: true})` does it all.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, openSync, rmSync } from "node:fs";
import { join } from "node:path";
import { socketPath } from "../../agent/api/index.ts";
import { cliPath as labCliPath, labNodeEnv, netnsArgv } from "../../cli/lab/index.ts";
import { waitFor } from "./index.ts";
import type { Lab } from "./lab.ts";

/** The checkout's `tsswarm` (what cluster labs run in their nodes too). */
export const cliPath = labCliPath;

export interface LabAgent {
	node: string;
	child: ChildProcess;
	/** Signal the agent and wait for it to exit. */
	stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts the agent of `node` and waits for its control socket. `args` are the agent's flags
 * (default: listen on the node's address).
 */
export async function startAgent(
	lab: Lab,
	node: string,
	o: { args?: string[] /** another build's `tsswarm` (an upgrade test's old version) */; cli?: string } = {},
): Promise<LabAgent> {
	const n = lab.nodes.find((x) => x.name === node)!;
	const sock = socketPath(n.dir);
	// A killed agent leaves its socket behind: wait for the new agent's, not the old file.
	rmSync(sock, { force: true });
	const log = openSync(join(n.dir, "agent.log"), "a");
	const flags = o.args ?? ["--listen-addr", `${n.address}:2377`];
	const [cmd, ...args] = netnsArgv(lab.record, n.name, [o.cli ?? cliPath, "agent", ...flags]);
	const child = spawn(cmd!, args, {
		stdio: ["ignore", log, log],
		// The lab's node env (data root, cgroup parent, netns prefix), so teardown sweeps what it makes.
		env: { ...labNodeEnv(lab.record, n), TSSWARM_NODE: n.name },
	});
	const exited = new Promise<void>((r) => child.once("exit", () => r()));
	await waitFor(`${node}'s agent socket`, () => existsSync(sock) || child.exitCode !== null, { timeoutMs: 20_000 });
	if (child.exitCode !== null) throw new Error(`${node}'s agent exited with ${child.exitCode}; see ${n.dir}/agent.log`);
	return {
		node,
		child,
		async stop(signal = "SIGTERM") {
			if (child.exitCode === null && child.signalCode === null) child.kill(signal);
			await exited;
		},
	};
}

/** `tsswarm ARGS` on a node, with the node's data root (the same as `lab.tsswarm(node, args)`). */
export function tsswarm(lab: Lab, node: string, args: string[]) {
	return lab.tsswarm(node, args);
}
