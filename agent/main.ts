// The agent's entry point: what `tsswarm agent` hands the process to. The CLI imports this file
// and agent/api only; everything else of agent/ stays behind it.
import { Agent, type AgentOptions } from "./agent.ts";
import { hostShuttingDown } from "./shutdown.ts";

/** Where the stop signals come from: the process, or a test's emitter. */
export interface SignalSource {
	once(event: "SIGINT" | "SIGTERM", listener: () => void): unknown;
}

/**
 * Runs the agent until SIGINT or SIGTERM, then stops it (stopping is not leaving); returns the
 * signal. A SIGTERM while the host shuts down also stops the node's task containers. The
 * handlers are in place before the agent starts: a signal during the start (a power-off right
 * after a restart) is kept, and the agent stops cleanly once started, instead of Node's default
 * exit that would leave its containers to the host's stop timeout.
 */
export async function runAgent(o: AgentOptions, signals: SignalSource = process): Promise<NodeJS.Signals> {
	const asked = new Promise<NodeJS.Signals>((resolve) => {
		signals.once("SIGINT", () => resolve("SIGINT"));
		signals.once("SIGTERM", () => resolve("SIGTERM"));
	});
	const agent = new Agent(o);
	await agent.start();
	const sig = await asked;
	const host = sig === "SIGTERM" ? await hostShuttingDown() : { stopping: false, seen: "SIGINT: not asked" };
	await agent.stop({ stopTasks: host.stopping, systemJobs: host.seen });
	return sig;
}
