// agent/shutdown.ts and main.ts: the agent tells a host shutdown (a start job for a shutdown target
// in systemd's queue) from a plain stop, restart or upgrade of its unit, and a stop signal that
// comes while it starts is not lost.
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import t from "tap";
import { socketPath } from "../../agent/api/index.ts";
import { runAgent } from "../../agent/main.ts";
import { hostShuttingDown, shutdownJobs } from "../../agent/shutdown.ts";
import { tempDir, waitFor } from "../helpers/index.ts";

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

/** Binds `port` on 127.0.0.1 (0: any free one) and lets it go: the port bound, or why not. */
function bindPort(port: number): Promise<number | Error> {
	return new Promise((resolve) => {
		const s = createServer();
		s.once("error", (err) => resolve(err));
		s.listen(port, "127.0.0.1", () => {
			const bound = (s.address() as AddressInfo).port;
			s.close(() => resolve(bound));
		});
	});
}

t.test("a SIGTERM during the agent's start is kept: it stops cleanly once started", async (t) => {
	// systemd may stop the unit while the agent is still starting (a power-off right after a
	// restart). With the handlers put in only after the start, Node's default exit ended the agent
	// at once and its task containers were left to the host's 30-90 s stop timeout.
	const run = async (when: "during the start" | "once started") => {
		const dir = tempDir("tsswarm-sigstart-");
		t.teardown(dir.remove);
		const port = await bindPort(0);
		if (port instanceof Error) throw port;
		const signals = new EventEmitter();
		const running = runAgent({ dataRoot: dir.path, listen: `127.0.0.1:${port}` }, signals);
		if (when === "during the start") signals.emit("SIGTERM");
		else {
			await waitFor("the agent's control socket", () => existsSync(socketPath(dir.path)), { timeoutMs: 30_000 });
			signals.emit("SIGTERM");
		}
		const sig = await Promise.race([running, new Promise((r) => setTimeout(r, 30_000, "still running").unref())]);
		t.equal(sig, "SIGTERM", `a SIGTERM ${when}: the agent stopped`);
		// Stopped, not abandoned: its port is free again.
		t.equal(typeof (await bindPort(port)), "number", `its port ${port} is free again`);
	};
	await run("once started"); // the positive control
	await run("during the start");
});
