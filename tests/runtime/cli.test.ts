// The single-node CLI over a real runtime: flag parsing, --rm (attached and detached), signals to a
// foreground container, stats, image inspect. Its own data root and cgroup parent (fileRuntime).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import t from "tap";
import { socketPath } from "../../agent/api/index.ts";
import { AmbiguousIdError } from "../../runtime/index.ts";
import { uniqueName, waitFor } from "../helpers/index.ts";
import { fileRuntime } from "../helpers/runtime.ts";

const { rt, dir, cgroupParent } = fileRuntime("cli");
const bin = new URL("../../cli/tsswarm", import.meta.url).pathname;
const env = { ...process.env, TSSWARM_CGROUP_PARENT: cgroupParent, TSSWARM_DATA_ROOT: dir.path };
const cli = (...args: string[]) => spawnSync(bin, args, { encoding: "utf8", env, timeout: 60_000 });
const mounted = (id: string) => readFileSync("/proc/self/mountinfo", "utf8").includes(id);

t.test("--insecure-registry takes one value (repeatable), so the image after it is the image", async (t) => {
	const r = cli(
		"run",
		"--insecure-registry",
		"127.0.0.1:9",
		"--insecure-registry",
		"127.0.0.2:9",
		"--rm",
		"busybox",
		"echo",
		"hi",
	);
	t.equal(r.status, 0, r.stderr);
	t.equal(r.stdout, "hi\n");
	t.same(rt.list({ all: true }), [], "--rm removed it");
});

t.test("--memory, --cpus and --userns are checked before any pull", async (t) => {
	for (const [flag, v] of [
		["--memory", "12QB"],
		["--cpus", "-1"],
		["--userns", "sideways"],
	] as const) {
		const r = cli("run", `${flag}=${v}`, "127.0.0.1:9/nosuch:1", "true");
		t.equal(r.status, 125, `${flag} ${v}: refused with docker run's 125`);
		t.match(r.stderr, new RegExp(`^tsswarm: ${flag}`), r.stderr);
		t.notMatch(r.stderr, /Unable to find image/, "no pull was tried");
	}
});

t.test("run -d --rm: the container removes itself when it exits", async (t) => {
	const r = cli("run", "-d", "--rm", "busybox", "sh", "-c", "sleep 0.2");
	t.equal(r.status, 0, r.stderr);
	const id = r.stdout.trim();
	t.match(id, /^[a-f0-9]{64}$/);
	await waitFor("the container to be removed", () => !existsSync(join(dir.path, "containers", id)), {
		timeoutMs: 15_000,
	});
	t.notOk(mounted(id), "no mount left");
	t.same(rt.cgroupDirsOf(id), [], "no cgroup left");
});

t.test("SIGTERM to a foreground run goes to the container, then --rm is honoured", async (t) => {
	const name = uniqueName("fg");
	const child = spawn(
		bin,
		[
			"run",
			"--rm",
			"--name",
			name,
			"busybox",
			"sh",
			"-c",
			"trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done",
		],
		{ env, stdio: ["ignore", "pipe", "pipe"] },
	);
	let out = "";
	child.stdout.on("data", (d) => {
		out += d;
	});
	const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
	t.teardown(() => {
		if (child.exitCode === null) child.kill("SIGKILL");
	});
	await waitFor("the container to print ready", () => out.includes("ready"), { timeoutMs: 20_000 });
	child.kill("SIGTERM");
	t.equal(await exited, 7, "the CLI exits with the container's code");
	t.match(out, /got TERM/, "the container's trap ran");
	t.notOk(
		rt.list({ all: true }).some((c) => c.name === name),
		"and the container was removed",
	);
});

t.test("stats: CPU moves for a busy container; the CLI prints it", async (t) => {
	const c = await rt.prepare({ image: "busybox", cmd: ["sh", "-c", "while :; do :; done"], memory: "64m" });
	t.teardown(() => rt.remove(c.id, { force: true }).catch(() => {}));
	await rt.start(c.id);
	const [s] = await rt.statsSample([c.id], { intervalMs: 500 });
	t.ok((s?.cpuPercent ?? 0) > 10, `a busy loop shows CPU use: ${s?.cpuPercent?.toFixed(1)}%`);
	t.equal(s?.memoryLimit, 64 * 1024 * 1024);
	t.ok((s?.pids ?? 0) >= 1);
	const r = cli("stats", "--no-stream", "--format", "json", c.id.slice(0, 12));
	t.equal(r.status, 0, r.stderr);
	const [j] = JSON.parse(r.stdout) as Array<{ id: string; cpuPercent: number }>;
	t.equal(j?.id, c.id);
	t.ok((j?.cpuPercent ?? 0) > 10, `CLI stats: ${j?.cpuPercent}%`);
	const table = cli("stats", "--no-stream");
	t.match(table.stdout, /CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+PIDS/);
	t.match(table.stdout, new RegExp(`${c.id.slice(0, 12)}.*64\\.00MiB`));
});

t.test("image inspect prints docker-like JSON", async (t) => {
	const r = cli("image", "inspect", "busybox");
	t.equal(r.status, 0, r.stderr);
	const [img] = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
	t.match(img, {
		Id: /^sha256:[a-f0-9]{64}$/,
		RepoTags: ["docker.io/library/busybox:latest"],
		RepoDigests: [/^docker\.io\/library\/busybox@sha256:/],
		Os: "linux",
		Architecture: "amd64",
		RootFS: { Type: "layers" },
	});
	t.ok((img!.Size as number) > 0);
	t.equal((img!.RootFS as { Layers: string[] }).Layers.length, (img!.Layers as unknown[]).length);
	const missing = cli("image", "inspect", "nosuch");
	t.equal(missing.status, 1);
	t.match(missing.stderr, /image docker.io\/library\/nosuch:latest not found/);
});

t.test("an id prefix that several containers share is an error naming them", async (t) => {
	const made: string[] = [];
	t.teardown(async () => {
		for (const id of made) await rt.remove(id, { force: true }).catch(() => {});
	});
	// Up to 17 containers: two must then share a first hex digit.
	let prefix: string | undefined;
	while (!prefix) {
		made.push((await rt.prepare({ image: "busybox", cmd: ["true"] })).id);
		const firsts = made.map((id) => id[0]);
		prefix = firsts.find((f, i) => firsts.indexOf(f) !== i);
	}
	const sharing = made.filter((id) => id.startsWith(prefix));
	t.throws(() => rt.find(prefix), AmbiguousIdError);
	const r = cli("rm", prefix);
	t.equal(r.status, 1);
	for (const id of sharing) t.match(r.stderr, id.slice(0, 12), "the candidates are named");
	t.equal(rt.find(sharing[0]!.slice(0, 20)).id, sharing[0], "a longer prefix finds one");
});

t.test("rm: a task's container is refused while its agent listens, removable once it is stopped", async (t) => {
	// install.sh --uninstall stops the agent, then removes the node's containers with this.
	const c = await rt.prepare({
		image: "busybox",
		name: uniqueName("task"),
		cmd: ["sleep", "600"],
		labels: { "com.docker.swarm.task.id": "t1", "com.docker.swarm.service.name": "web" },
	});
	await rt.start(c.id);
	t.teardown(() => rt.remove(c.id, { force: true }).catch(() => {}));
	// Something that answers on the data root's API socket, as a running agent does.
	const sock = socketPath(dir.path);
	mkdirSync(dirname(sock), { recursive: true });
	const agent = createServer((s) => s.end());
	await new Promise<void>((r) => agent.listen(sock, r));
	const refused = cli("rm", "-f", c.id);
	t.equal(refused.status, 1, "refused while the agent listens");
	t.match(refused.stderr, /runs task t1 of service web: the agent owns it while it runs/);
	t.equal(rt.find(c.id).status, "running", "and the container still runs");
	await new Promise<void>((r) => agent.close(() => r()));
	t.notOk(existsSync(sock), "the agent's socket is gone");
	const removed = cli("rm", "-f", c.id);
	t.equal(removed.status, 0, removed.stderr);
	t.same(
		rt.list({ all: true }).filter((x) => x.id === c.id),
		[],
		"removed with the agent stopped",
	);
});
