// Health checks with real runc: starting -> healthy -> unhealthy after `retries` failures, timeouts,
// start period, the runner ending with its container, and bad values refused.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { run as sh } from "../../cli/lab/index.ts";
import { InvalidSpecError, parseDuration, resolveHealthcheck } from "../../runtime/index.ts";
import { waitFor } from "../helpers/index.ts";
import { fileRuntime } from "../helpers/runtime.ts";

const { rt, dir, cgroupParent } = fileRuntime("health");

const cli = new URL("../../cli/tsswarm", import.meta.url).pathname;
const runCli = (args: string[], o: { env: Record<string, string> }) =>
	sh([cli, ...args], { env: { ...process.env, ...o.env }, allowFailure: true });
const health = (id: string) => rt.inspect(id).health;
const runnerPid = (id: string) => Number(readFileSync(join(rt.inspect(id).dir, "health.pid"), "utf8"));

t.test("durations and specs: parsed like Docker's, bad ones refused with a named error", async (t) => {
	t.equal(parseDuration("1m30s", "x"), 90_000);
	t.equal(parseDuration("250ms", "x"), 250);
	t.equal(parseDuration(1500, "x"), 1500);
	for (const bad of ["", "10", "5 s", "-1s", "1d", "s"])
		t.throws(() => parseDuration(bad, "health interval"), InvalidSpecError);
	t.throws(() => resolveHealthcheck({ test: ["SHELL", "true"] }, undefined), /use CMD, CMD-SHELL or NONE/);
	t.throws(() => resolveHealthcheck({ test: ["CMD-SHELL", "true"], retries: 0 }, undefined), /retries/);
	t.equal(resolveHealthcheck({ test: ["NONE"] }, { Test: ["CMD", "true"] }), undefined, "NONE disables the image's");
	t.same(
		resolveHealthcheck(undefined, { Test: ["CMD", "true"], Interval: 2e9 })?.intervalMs,
		2000,
		"image values in ns",
	);
	await t.rejects(
		rt.prepare({ image: "busybox", cmd: ["true"], healthcheck: { test: ["CMD-SHELL", "true"], interval: "soon" } }),
		InvalidSpecError,
		"prepare refuses a bad interval before making anything",
	);
	t.same(rt.list({ all: true }), [], "nothing was created");
});

t.test("starting -> healthy -> unhealthy -> healthy; the runner ends with the container", async (t) => {
	const c = await rt.prepare({
		image: "busybox",
		cmd: ["sh", "-c", "touch /tmp/ok; exec sleep 600"],
		healthcheck: { test: ["CMD-SHELL", "test -f /tmp/ok && echo fine"], interval: "100ms", timeout: "2s", retries: 2 },
	});
	await rt.start(c.id);
	t.equal(health(c.id)?.status ?? "starting", "starting");
	const h = await waitFor("healthy", () => (health(c.id)?.status === "healthy" ? health(c.id) : undefined));
	t.equal(h.log.at(-1)?.exitCode, 0);
	t.match(h.log.at(-1)?.output, "fine", "the probe's output is kept");
	await rt.exec(c.id, ["rm", "/tmp/ok"], { stdio: "pipe" });
	const bad = await waitFor("unhealthy", () => (health(c.id)?.status === "unhealthy" ? health(c.id) : undefined));
	t.ok(bad.failingStreak >= 2, `unhealthy after ${bad.failingStreak} consecutive failures (retries 2)`);
	t.ok(bad.log.length <= 5, "only the last five probes are kept");
	await rt.exec(c.id, ["touch", "/tmp/ok"], { stdio: "pipe" });
	await waitFor("healthy again", () => health(c.id)?.status === "healthy" || undefined);
	const pid = runnerPid(c.id);
	t.ok(existsSync(`/proc/${pid}`), "the health runner is a process of its own");
	await rt.remove(c.id, { force: true });
	await waitFor("the runner to end", () => !existsSync(`/proc/${pid}`) || undefined);
});

t.test("a probe that exceeds its timeout fails and is killed; failures in the start period do not count", async (t) => {
	const c = await rt.prepare({
		image: "busybox",
		cmd: ["sleep", "600"],
		healthcheck: { test: ["CMD", "sleep", "30"], interval: "100ms", timeout: "200ms", retries: 1, startPeriod: "1s" },
	});
	const started = Date.now();
	await rt.start(c.id);
	t.teardown(() => rt.remove(c.id, { force: true }).catch(() => {}));
	const h = await waitFor("unhealthy", () => (health(c.id)?.status === "unhealthy" ? health(c.id) : undefined));
	t.ok(Date.now() - started >= 1000, "not unhealthy inside the start period");
	t.match(h.log.at(-1)?.output, /exceeded its timeout \(200 ms\)/);
	const ps = await rt.exec(c.id, ["ps", "-o", "args"], { stdio: "pipe" });
	t.notMatch(ps.stdout, /sleep 30/, "timed-out probes are killed inside the container");
});

t.test("CLI: health flags, ps shows the status, bad flags are refused (125, as docker run)", async (t) => {
	const env = { TSSWARM_DATA_ROOT: dir.path, TSSWARM_CGROUP_PARENT: cgroupParent };
	const run = await runCli(
		["run", "-d", "--health-cmd", "true", "--health-interval", "100ms", "busybox", "sleep", "600"],
		{ env },
	);
	t.equal(run.code, 0, run.stderr);
	const id = run.stdout.trim();
	await waitFor("healthy", () => health(id)?.status === "healthy" || undefined);
	const ps = await runCli(["ps"], { env });
	t.match(ps.stdout, /Up since .* \(healthy\)/);
	const bad = await runCli(["run", "--health-cmd", "true", "--health-interval", "often", "busybox"], { env });
	// As docker: `run`'s own failures, bad flags included, exit 125 (other commands: 2).
	t.equal(bad.code, 125);
	t.match(bad.stderr, /--health-interval must be a duration/);
	const noCmd = await runCli(["run", "--health-retries", "3", "busybox"], { env });
	t.equal(noCmd.code, 125);
	t.match(noCmd.stderr, /need --health-cmd/);
});
