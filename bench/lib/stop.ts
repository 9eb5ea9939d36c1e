// Shared by the benchmarks: end a process they started (SIGTERM, SIGKILL after 10 s) and wait for it.
import type { ChildProcess } from "node:child_process";

export async function stopProcess(p: ChildProcess): Promise<void> {
	if (p.exitCode !== null || p.signalCode !== null) return;
	const gone = new Promise((r) => p.once("exit", r));
	p.kill("SIGTERM");
	const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
	await gone;
	clearTimeout(t);
}
