// Container logs in Docker's json-file format with real runc: both streams, rotation, tail,
// since/until, timestamps, follow, a re-adopting runtime, and the CLI. stdout and stderr are two
// pipes, so (as with Docker) lines of different streams are ordered by arrival: the containers
// here pause between streams.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { run as sh } from "../../cli/lab/index.ts";
import { InvalidSpecError, type LogEntry, parseTime, Runtime } from "../../runtime/index.ts";
import { uniqueName, waitFor } from "../helpers/index.ts";
import { fileRuntime } from "../helpers/runtime.ts";

const { rt, dir, cgroupParent } = fileRuntime("logs", { logMaxSize: 4096, logMaxFiles: 3 });

const collect = async (it: AsyncIterable<LogEntry>) => {
	const out: LogEntry[] = [];
	for await (const e of it) out.push(e);
	return out;
};

t.test("json-lines with both streams and nanosecond times; tail, since, until", async (t) => {
	const c = await rt.prepare({
		image: "busybox",
		cmd: ["sh", "-c", "echo one; sleep 0.2; echo two >&2; sleep 1; echo three"],
	});
	await rt.start(c.id);
	await rt.wait(c.id);
	const raw = readFileSync(join(rt.inspect(c.id).dir, "container.log"), "utf8")
		.trim()
		.split("\n");
	const first = JSON.parse(raw[0]!) as LogEntry;
	t.same(Object.keys(first).sort(), ["log", "stream", "time"], "Docker's json-file fields");
	t.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/, "RFC 3339 with nanoseconds");
	const all = await collect(rt.logEntries(c.id));
	t.same(
		all.map((e) => [e.stream, e.log]),
		[
			["stdout", "one\n"],
			["stderr", "two\n"],
			["stdout", "three\n"],
		],
	);
	t.same(rt.logs(c.id), { stdout: "one\nthree\n", stderr: "two\n" });
	t.same(
		(await collect(rt.logEntries(c.id, { tail: 1 }))).map((e) => e.log),
		["three\n"],
		"tail",
	);
	const cut = all[2]!.time;
	t.same(
		(await collect(rt.logEntries(c.id, { since: cut }))).map((e) => e.log),
		["three\n"],
		"since an RFC 3339 time",
	);
	t.same((await collect(rt.logEntries(c.id, { until: all[1]!.time }))).length, 2, "until");
	t.same((await collect(rt.logEntries(c.id, { since: "1h" }))).length, 3, "since a duration ago");
	t.same((await collect(rt.logEntries(c.id, { since: String(Date.now() / 1000 + 60) }))).length, 0, "unix seconds");
	t.throws(() => parseTime("yesterday", "since"), InvalidSpecError);
	t.throws(() => rt.logEntries(c.id, { since: "2026-13-45" }), /invalid since/);
});

t.test("rotation keeps at most max-file files of about max-size, newest lines kept", async (t) => {
	const c = await rt.prepare({
		image: "busybox",
		cmd: ["sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done"],
	});
	await rt.start(c.id);
	await rt.wait(c.id);
	const d = rt.inspect(c.id).dir;
	const logs = readdirSync(d)
		.filter((f) => f.startsWith("container.log"))
		.sort();
	t.same(logs, ["container.log", "container.log.1", "container.log.2"], "three files");
	for (const f of logs) t.ok(readFileSync(join(d, f)).length <= 4096, `${f} within the max size`);
	const lines = (await collect(rt.logEntries(c.id))).map((e) => e.log.trim());
	t.equal(lines.at(-1), "line-399", "the newest line is kept");
	t.ok(lines.length < 400 && lines.length > 30, `older lines rotated away (${lines.length} kept)`);
	const nums = lines.map((l) => Number(l.slice(5)));
	t.same(
		nums,
		nums.map((_, i) => nums[0]! + i),
		"what is kept is contiguous and in order",
	);
	await t.rejects(rt.prepare({ image: "busybox", logMaxSize: "tiny" }), InvalidSpecError);
});

t.test("follow streams new lines, survives rotation, ends when the container exits", async (t) => {
	const c = await rt.prepare({
		image: "busybox",
		logMaxSize: "8k", // the burst (~15 KB) rotates twice but fits in the three files
		cmd: [
			"sh",
			"-c",
			"echo start; while [ ! -e /tmp/go ]; do sleep 0.05; done; i=0; while [ $i -lt 200 ]; do echo n-$i; i=$((i+1)); done",
		],
	});
	// The container waits for /tmp/go, so "follow" is running before the burst.
	await rt.start(c.id);
	const got: string[] = [];
	const following = (async () => {
		for await (const e of rt.logEntries(c.id, { follow: true })) got.push(e.log.trim());
	})();
	await waitFor("the first line", () => got.includes("start") || undefined);
	await rt.exec(c.id, ["touch", "/tmp/go"], { stdio: "pipe" });
	await following; // ends by itself when the container exits
	t.equal(got.at(-1), "n-199", "follow saw the last line and then ended");
	const burst = got.filter((l) => l.startsWith("n-"));
	t.same(
		burst.map((l) => Number(l.slice(2))),
		Array.from({ length: 200 }, (_, i) => i),
		"every line of the burst, in order, across rotations",
	);
});

t.test("a new runtime instance (agent restart) reads and follows a running container's log", async (t) => {
	const c = await rt.prepare({ image: "busybox", cmd: ["sh", "-c", "echo before; sleep 1; echo after"] });
	await rt.start(c.id);
	const again = new Runtime({ root: dir.path, cgroupParent });
	const lines = (await collect(again.logEntries(c.id, { follow: true }))).map((e) => e.log);
	t.same(lines, ["before\n", "after\n"]);
});

t.test("CLI: -t timestamps, --tail, streams kept apart, bad flags are usage errors", async (t) => {
	const cli = new URL("../../cli/tsswarm", import.meta.url).pathname;
	const env = { ...process.env, TSSWARM_DATA_ROOT: dir.path, TSSWARM_CGROUP_PARENT: cgroupParent };
	const c = await rt.prepare({
		image: "busybox",
		cmd: ["sh", "-c", "echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c"],
	});
	await rt.start(c.id);
	await rt.wait(c.id);
	const r = await sh([cli, "logs", "-t", "--tail", "2", c.id], { env });
	t.match(r.stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z c\n$/, "stdout: the last line, with its time");
	t.match(r.stderr, /^\d{4}-\d\d-\d\dT[\d:.]+Z b\n$/, "stderr: the other");
	const f = await sh([cli, "logs", "--follow", c.id], { env });
	t.equal(f.stdout, "a\nc\n", "follow on an exited container prints all and ends");
	const bad = await sh([cli, "logs", "--since", "last week", c.id], { env, allowFailure: true });
	t.equal(bad.code, 2);
	t.match(bad.stderr, /invalid --since "last week"/);
	const badTail = await sh([cli, "logs", "--tail", "x", c.id], { env, allowFailure: true });
	t.equal(badTail.code, 2);
});

t.test(
	"one log daemon per data root: it outlives the CLI that started it and resumes after being killed",
	async (t) => {
		const cli = new URL("../../cli/tsswarm", import.meta.url).pathname;
		const env = { ...process.env, TSSWARM_DATA_ROOT: dir.path, TSSWARM_CGROUP_PARENT: cgroupParent };
		const script = (name: string) =>
			`echo ${name}-one; until [ -e /tmp/go ]; do sleep 0.05; done; echo ${name}-two; until [ -e /tmp/end ]; do sleep 0.05; done; echo ${name}-three`;
		// Two containers, one started by a CLI process that has exited by the time the lines are written.
		const r = await sh([cli, "run", "-d", "--name", uniqueName("ld"), "busybox", "sh", "-c", script("cli")], { env });
		const byCli = r.stdout.trim();
		const own = await rt.prepare({ image: "busybox", cmd: ["sh", "-c", script("own")] });
		await rt.start(own.id);
		const ids = [rt.find(byCli).id, own.id];
		t.teardown(async () => {
			for (const id of ids) await rt.remove(id, { force: true }).catch(() => {});
		});
		await waitFor(
			"both first lines",
			() => rt.logs(ids[0]!).stdout === "cli-one\n" && rt.logs(ids[1]!).stdout === "own-one\n",
		);
		const daemons = () =>
			readdirSync("/proc").filter((p) => {
				try {
					const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
					return argv.some((a) => a.endsWith("log-daemon.ts")) && argv.includes(dir.path);
				} catch {
					return false;
				}
			});
		t.equal(daemons().length, 1, "one daemon writes the logs of both containers");
		const first = Number(readFileSync(join(dir.path, "logd.pid"), "utf8").split(" ")[0]);
		t.same(daemons(), [String(first)], "the one logd.pid names");
		process.kill(first, "SIGKILL");
		await waitFor("the daemon to be gone", () => !daemons().includes(String(first)));
		// Output written while no daemon runs waits in the FIFOs, which the shims hold open.
		for (const id of ids) await rt.exec(id, ["touch", "/tmp/go"], { stdio: "pipe" });
		t.equal(rt.inspect(ids[0]!).status, "running", "the containers run on without the daemon");
		await waitFor("a new daemon to pick up the buffered lines", () =>
			ids.every((id, i) => rt.logs(id).stdout === `${["cli", "own"][i]}-one\n${["cli", "own"][i]}-two\n`),
		);
		t.notSame(daemons(), [String(first)], "it is a new daemon");
		for (const id of ids) await rt.exec(id, ["touch", "/tmp/end"], { stdio: "pipe" });
		for (const [i, id] of ids.entries()) {
			t.equal(await rt.wait(id), 0, "the exit code is recorded");
			const n = ["cli", "own"][i];
			t.equal(rt.logs(id).stdout, `${n}-one\n${n}-two\n${n}-three\n`, "every line, once, in order");
		}
	},
);
