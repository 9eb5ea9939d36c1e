// The agent's entry point: what `tsswarm agent` hands the process to. The CLI imports this file
// and agent/api only; everything else of agent/ stays behind it.
import { Agent, type AgentOptions } from "./agent.ts";
import { hostShuttingDown } from "./shutdown.ts";

/**
 * Runs the agent until SIGINT or SIGTERM, then stops it (stopping is not leaving); returns the
 * signal. A SIGTERM while the host shuts down also stops the node's task containers.
 */
export async function runAgent(o: AgentOptions): Promise<NodeJS.Signals> {
	const agent = new Agent(o);
	await agent.start();
	const sig = await new Promise<NodeJS.Signals>((resolve) => {
		process.once("SIGINT", () => resolve("SIGINT"));
		process.once("SIGTERM", () => resolve("SIGTERM"));
	});
	const host = sig === "SIGTERM" ? await hostShuttingDown() : { stopping: false, seen: "SIGINT: not asked" };
	await agent.stop({ stopTasks: host.stopping, systemJobs: host.seen });
	return sig;
}
