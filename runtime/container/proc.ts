// Is a process still the one we recorded? A pid alone can be reused (after a reboot, surely), so
// its start time (in clock ticks since boot) is recorded and compared too.
import { readFileSync } from "node:fs";

/** The start time of a live process (field 22 of /proc/PID/stat), or undefined if it is gone. */
export function procStart(pid: number): string | undefined {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		// The command name (field 2) may hold spaces and parentheses: count from its closing one.
		return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
	} catch {
		return undefined;
	}
}
