// Is the host shutting down? A stopped agent leaves its containers running (a restart or an
// upgrade re-adopts them), but at power-off that would make systemd wait out each container init.
import { execFile } from "node:child_process";

/** The targets whose start job means the host is going down. */
const SHUTDOWN_TARGETS = new Set([
	"shutdown.target",
	"poweroff.target",
	"reboot.target",
	"halt.target",
	"kexec.target",
]);

/** The shutdown targets with a start job in `systemctl list-jobs --no-legend --plain` output. */
export function shutdownJobs(listJobs: string): string[] {
	// Lines: JOB UNIT TYPE STATE.
	return listJobs
		.split("\n")
		.map((l) => l.trim().split(/\s+/))
		.filter((f) => f.length >= 3 && SHUTDOWN_TARGETS.has(f[1]!) && f[2] === "start")
		.map((f) => f[1]!);
}

/**
 * Whether systemd has a start job queued for a shutdown target: a power-off, reboot or halt is
 * under way. (`is-system-running` said `running` at that moment under systemd 252 in the test's
 * booted root; the job queue is what systemd is doing.) `seen` says what was read, for the log.
 * False without systemd, or when systemctl does not answer within `timeoutMs`.
 */
export function hostShuttingDown(timeoutMs = 2000): Promise<{ stopping: boolean; seen: string }> {
	return new Promise((resolve) => {
		execFile("systemctl", ["list-jobs", "--no-legend", "--plain"], { timeout: timeoutMs }, (err, stdout) => {
			const out = typeof stdout === "string" ? stdout : "";
			if (err && !out) {
				resolve({ stopping: false, seen: `systemctl list-jobs: ${err.message.split("\n")[0]}` });
				return;
			}
			const down = shutdownJobs(out);
			resolve({ stopping: down.length > 0, seen: down.length ? down.join(",") : "no shutdown job" });
		});
	});
}
