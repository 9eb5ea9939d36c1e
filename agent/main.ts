// The agent's entry point: what `tsswarm agent` hands the process to. The CLI imports this file
// and agent/api only; everything else of agent/ stays behind it.
import { Agent, type AgentOptions } from "./agent.ts";

/** Runs the agent until SIGINT or SIGTERM, then stops it (stopping is not leaving); returns the signal. */
export async function runAgent(o: AgentOptions): Promise<NodeJS.Signals> {
	const agent = new Agent(o);
	await agent.start();
	const sig = await new Promise<NodeJS.Signals>((resolve) => {
		process.once("SIGINT", () => resolve("SIGINT"));
		process.once("SIGTERM", () => resolve("SIGTERM"));
	});
	await agent.stop();
	return sig;
}
