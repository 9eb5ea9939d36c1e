// agent/shutdown.ts: the agent tells a host shutdown (a start job for a shutdown target in
// systemd's queue) from a plain stop, restart or upgrade of its unit.
import t from "tap";
import { hostShuttingDown, shutdownJobs } from "../../agent/shutdown.ts";

t.test("shutdown targets with a start job count; stops, restarts and other units do not", async (t) => {
	// Seen under systemd 252 at a power-off (`systemctl list-jobs --no-legend --plain`).
	const halting = [
		"611 halt.target           start waiting",
		"612 shutdown.target       start waiting",
		"618 tsswarm.service       stop  running",
		"",
	].join("\n");
	t.same(shutdownJobs(halting), ["halt.target", "shutdown.target"]);
	for (const target of ["poweroff.target", "reboot.target", "kexec.target"])
		t.same(shutdownJobs(`7 ${target} start waiting\n`), [target], target);
	t.same(shutdownJobs("618 tsswarm.service stop running\n"), [], "a `systemctl stop` of the unit");
	t.same(shutdownJobs("620 tsswarm.service restart running\n"), [], "a restart (an upgrade)");
	t.same(shutdownJobs("9 shutdown.target stop waiting\n"), [], "a stop job of the target is not a shutdown");
	t.same(shutdownJobs("No jobs running.\n"), []);
	t.same(shutdownJobs(""), []);
});

t.test("on this machine (no shutdown under way) the check answers false, quickly", async (t) => {
	const since = Date.now();
	const r = await hostShuttingDown(2000);
	t.equal(r.stopping, false, `not stopping (${r.seen})`);
	t.ok(Date.now() - since < 5000, "within the timeout");
});
