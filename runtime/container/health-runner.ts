// The health check loop of one container, run detached by Runtime.start:
//   node health-runner.ts <runc argv as JSON> <container id> <container dir> <health check as JSON>
// (the release executable: tsswarm __health-runner ...; see helpers.ts)
// It ends by itself when the container exits or is removed.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Healthcheck, type HealthState, nextHealth, probe, writeHealth } from "./health.ts";

export async function main(argv: string[]): Promise<void> {
	const [runcJson, id, dir, hcJson] = argv;
	const runc = JSON.parse(runcJson!) as string[];
	const hc = JSON.parse(hcJson!) as Healthcheck;
	const started = Date.now();
	const gone = () => !existsSync(dir!) || existsSync(join(dir!, "exitcode"));
	let state: HealthState = { status: "starting", failingStreak: 0, log: [] };
	writeHealth(dir!, state);
	for (;;) {
		await sleep(hc.intervalMs);
		if (gone()) break;
		const p = await probe(runc, id!, dir!, hc);
		if (gone()) break;
		state = nextHealth(state, p, hc, Date.now() - started < hc.startPeriodMs);
		writeHealth(dir!, state);
	}
}

if (import.meta.main) void main(process.argv.slice(2));
