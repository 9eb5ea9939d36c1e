import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { logdAlive } from "../../runtime/container/logd-client.ts";
import {
	ContainerRunningError,
	type ContainerSpec,
	EXIT_UNKNOWN,
	ImageInUseError,
	InvalidSpecError,
	NameInUseError,
	PlatformUnsupportedError,
	procStart,
	Runtime,
	stopLogDaemon,
} from "../../runtime/index.ts";
import { ensureTestImages } from "../helpers/images.ts";
import { tempDir, uniqueName, waitFor } from "../helpers/index.ts";
import { fileRuntime } from "../helpers/runtime.ts";

// One data root and one cgroup parent for this file, removed at the end even on failure.
const { rt, dir, cgroupParent } = fileRuntime("runtime", { platforms: ["linux/amd64", "linux/arm64"] });

async function runOnce(spec: Partial<ContainerSpec> & { cmd: string[] }) {
	const c = await rt.prepare({ image: "busybox", ...spec });
	const r = await rt.runAttached(c.id, "pipe");
	await rt.remove(c.id);
	return r;
}

t.test("runs a command with real runc: output, exit codes, env, workdir, user, hostname, loopback", async (t) => {
	const r = await runOnce({ cmd: ["sh", "-c", "echo out; echo err >&2; exit 3"] });
	t.equal(r.code, 3);
	t.equal(r.stdout, "out\n");
	t.equal(r.stderr, "err\n");
	const env = await runOnce({
		cmd: ["sh", "-c", 'echo "$GREETING $(pwd) $(id -u) $(hostname)"; ip -o link show lo | grep -c UP'],
		env: ["GREETING=hi"],
		workdir: "/tmp",
		user: "nobody",
		hostname: "box1",
	});
	t.equal(env.stdout, "hi /tmp 65534 box1\n1\n");
});

t.test("linux/arm64 runs through qemu-user binfmt", async (t) => {
	const r = await runOnce({ platform: "linux/arm64", cmd: ["uname", "-m"] });
	t.equal(r.stdout.trim(), "aarch64");
});

t.test("limits: memory (OOM kill -> 137), pids, read-only rootfs", async (t) => {
	const oom = await runOnce({ memory: "16m", cmd: ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1"] });
	t.equal(oom.code, 137, `over the memory limit the container is killed (${oom.stderr.trim()})`);
	const pids = await runOnce({
		pidsLimit: 4,
		cmd: ["sh", "-c", "for i in 1 2 3 4 5 6; do sleep 3 & done; echo spawned"],
	});
	t.match(
		pids.stderr,
		/can't fork|Resource temporarily unavailable/,
		`the pids limit stops forks (${pids.stderr.trim()})`,
	);
	const limited = await rt.prepare({
		image: "busybox",
		pidsLimit: 5,
		memory: "32m",
		cpus: "0.5",
		cmd: ["sleep", "30"],
	});
	await rt.start(limited.id);
	const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
	const cg = (ctl: string, file: string) =>
		readFileSync(
			v2
				? `/sys/fs/cgroup/${cgroupParent}/${limited.id}/${file}`
				: `/sys/fs/cgroup/${ctl}/${cgroupParent}/${limited.id}/${file}`,
			"utf8",
		).trim();
	t.equal(cg("pids", "pids.max"), "5", "pids.max in the container's cgroup");
	t.equal(
		cg("memory", v2 ? "memory.max" : "memory.limit_in_bytes"),
		String(32 * 1024 * 1024),
		"memory limit in its cgroup",
	);
	if (v2) t.equal(cg("cpu", "cpu.max"), "50000 100000");
	else t.equal(cg("cpu", "cpu.cfs_quota_us"), "50000", "cpu quota for 0.5 CPUs");
	await rt.remove(limited.id, { force: true });
	const ro = await runOnce({ readOnly: true, cmd: ["sh", "-c", "touch /x"] });
	t.not(ro.code, 0, "a read-only rootfs refuses writes");
	t.match(ro.stderr, /Read-only file system/);
});

t.test("ulimits: the container's processes get the soft and hard limits asked; a bad one is refused", async (t) => {
	const r = await runOnce({
		ulimits: [
			{ name: "nofile", soft: 1024, hard: 2048 },
			{ name: "nproc", soft: 300, hard: 300 },
		],
		cmd: ["sh", "-c", "echo $(ulimit -Sn) $(ulimit -Hn) $(ulimit -Su)"],
	});
	t.equal(r.stdout, "1024 2048 300\n");
	const plain = await runOnce({ cmd: ["sh", "-c", "ulimit -Sn"] });
	t.not(plain.stdout, "1024\n", `control: without ulimits the default applies (${plain.stdout.trim()})`);
	await t.rejects(runOnce({ ulimits: [{ name: "files", soft: 1, hard: 1 }], cmd: ["true"] }), InvalidSpecError);
	await t.rejects(
		runOnce({ ulimits: [{ name: "nofile", soft: 9, hard: 8 }], cmd: ["true"] }),
		/soft 9 is above hard 8/,
	);
});

t.test("volumes: a bind mount and a named volume", async (t) => {
	const host = tempDir();
	t.teardown(host.remove);
	await runOnce({
		volumes: [
			{ source: host.path, target: "/data" },
			{ source: "cache1", target: "/cache" },
		],
		cmd: ["sh", "-c", "echo bound > /data/f; echo named > /cache/g"],
	});
	t.equal(readFileSync(join(host.path, "f"), "utf8"), "bound\n");
	t.equal(readFileSync(join(dir.path, "volumes", "cache1", "g"), "utf8"), "named\n");
	const again = await runOnce({
		volumes: [{ source: "cache1", target: "/cache", readonly: true }],
		cmd: ["sh", "-c", "cat /cache/g; touch /cache/x"],
	});
	t.equal(again.stdout, "named\n", "a named volume outlives its container");
	t.not(again.code, 0, "and can be mounted read-only");
});

t.test("detached: start, logs, stats, exec, stop with grace then kill, remove cleans up", async (t) => {
	const c = await rt.prepare({
		image: "busybox",
		name: uniqueName("web"),
		cmd: ["sh", "-c", "echo ready; while true; do sleep 1; done"],
		memory: "64m",
	});
	await rt.start(c.id);
	t.equal(rt.find(c.name).status, "running");
	await waitFor("the log line", () => rt.logs(c.id).stdout.includes("ready"));
	const st = rt.stats(c.id);
	t.ok((st.memoryBytes ?? 0) > 0 && (st.pids ?? 0) >= 1, `stats from the cgroup: ${JSON.stringify(st)}`);
	const ex = await rt.exec(c.id, ["sh", "-c", "echo inside $(hostname)"], { stdio: "pipe" });
	t.equal(ex.stdout, `inside ${c.id.slice(0, 12)}\n`);
	await t.rejects(rt.prepare({ image: "busybox", name: c.name, cmd: ["true"] }), NameInUseError);
	await t.rejects(rt.remove(c.id), ContainerRunningError);
	const t0 = performance.now();
	const stopped = await rt.stop(c.id, { graceMs: 300 });
	const ms = performance.now() - t0;
	t.equal(stopped.exitCode, 137, "sh as PID 1 ignores SIGTERM, so SIGKILL after the grace period");
	t.ok(ms >= 300 && ms < 5000, `stopped in ${Math.round(ms)} ms`);
	const cdir = rt.inspect(c.id).dir;
	await rt.remove(c.id);
	t.notOk(existsSync(cdir), "the container dir is gone");
	t.notOk(readFileSync("/proc/self/mountinfo", "utf8").includes(c.id), "no mount left");
	const cg = ["memory", "pids", "cpu"].map((ctl) => `/sys/fs/cgroup/${ctl}/${cgroupParent}/${c.id}`).filter(existsSync);
	t.same(cg, [], "no cgroup left");
});

t.test("a start cut short still hands the output on, and a stop right then ends the container", async (t) => {
	// The agent stops a task whose container is starting (a host shutdown right after a restart).
	// runc knows the container only once the shim's `runc run` has created it: a signal sent before
	// then misses, so stop sends it again until the container has ended. The container runs on after
	// its start was cut short, and its output still goes to its log.
	const early = async (cmd: string[]) => {
		const c = await rt.prepare({ image: "busybox", name: uniqueName("early"), cmd });
		const ac = new AbortController();
		const starting = rt.start(c.id, { signal: ac.signal });
		ac.abort();
		await t.rejects(starting, { name: "AbortError" }, "the start was cut short");
		const shim = rt.find(c.id);
		t.equal(shim.status, "running", "its shim runs (the container may not exist in runc yet)");
		t.equal(procStart(shim.shimPid!), shim.shimStart, "the shim is alive before the stop");
		return shim;
	};
	const stopNow = async (c: { id: string; shimPid?: number; shimStart?: string }, graceMs: number) => {
		const t0 = performance.now();
		const stopped = await Promise.race([
			rt.stop(c.id, { graceMs }),
			new Promise<undefined>((r) => setTimeout(r, 20_000, undefined).unref()),
		]);
		const ms = Math.round(performance.now() - t0);
		t.equal(stopped?.status, "exited", `stopped in ${ms} ms, not hung on a signal that missed`);
		t.equal(stopped?.exitCode, 137, "sleep as PID 1 ignores SIGTERM: it was killed");
		await waitFor("the shim to end with its container", () => procStart(c.shimPid!) !== c.shimStart, {
			timeoutMs: 10_000,
		});
		await rt.remove(c.id, { force: true });
		t.notOk(existsSync(join(dir.path, "runc", c.id)), "runc holds no state for it");
	};
	for (let i = 0; i < 3; i++) await stopNow(await early(["sleep", "600"]), 0);
	// With a log daemon already running (a fully started container keeps it busy), nothing else
	// would hand this container to it.
	const busy = await rt.prepare({ image: "busybox", name: uniqueName("busy"), cmd: ["sleep", "600"] });
	await rt.start(busy.id);
	t.teardown(() => rt.remove(busy.id, { force: true }).catch(() => {}));
	t.ok(logdAlive(dir.path), "a log daemon runs");
	const talks = await early(["sh", "-c", "echo hello; exec sleep 600"]);
	await waitFor("the output of a container whose start was cut short in its log", () =>
		rt.logs(talks.id).stdout.includes("hello"),
	);
	await stopNow(talks, 200);
});

const mounted = (id: string) => readFileSync("/proc/self/mountinfo", "utf8").includes(id);
const runcInit = (id: string) =>
	(JSON.parse(readFileSync(join(dir.path, "runc", id, "state.json"), "utf8")) as { init_process_pid: number })
		.init_process_pid;
const children = (pid: number) =>
	readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
const killPid = (pid: number) => {
	try {
		process.kill(pid, "SIGKILL");
	} catch {}
};

t.test("a container outlives the process that started it and is re-adopted", async (t) => {
	const name = uniqueName("adopt");
	const script = `
		import { Runtime } from ${JSON.stringify(new URL("../../runtime/index.ts", import.meta.url).pathname)};
		const rt = new Runtime({ root: ${JSON.stringify(dir.path)}, cgroupParent: ${JSON.stringify(cgroupParent)} });
		const c = await rt.prepare({ image: "busybox", name: ${JSON.stringify(name)}, cmd: ["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done"] });
		await rt.start(c.id);
		process.stdout.write("started\\n");
		setInterval(() => {}, 1000);
	`;
	const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
		stdio: ["ignore", "pipe", "inherit"],
	});
	let out = "";
	child.stdout.on("data", (d) => {
		out += d;
	});
	await waitFor("the child to start a container", () => out.includes("started"), { timeoutMs: 20_000 });
	child.kill("SIGKILL");
	await new Promise((r) => child.once("exit", r));
	// A fresh Runtime (as after an agent restart) finds it running and controls it.
	const again = new Runtime({ root: dir.path, cgroupParent });
	t.equal(again.find(name).status, "running", "still running after its starter was SIGKILLed");
	const id = again.find(name).id;
	const stopped = await again.stop(name, { graceMs: 5000 });
	t.equal(stopped.exitCode, 7, "its exit code is collected (the trap ran on SIGTERM)");
	await again.remove(name);
	t.same(again.cgroupDirsOf(id), [], "no cgroup left");
	t.notOk(mounted(id), "no mount left");
});

t.test("a container whose shim died is still controlled, and its exit is noticed", async (t) => {
	const c = await rt.prepare({
		image: "busybox",
		cmd: ["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done"],
	});
	t.teardown(() => rt.remove(c.id, { force: true }).catch(() => {}));
	const started = await rt.start(c.id);
	killPid(started.shimPid!);
	await waitFor("the shim to be gone", () => !existsSync(`/proc/${started.shimPid}`));
	const again = new Runtime({ root: dir.path, cgroupParent });
	t.equal(again.find(c.id).status, "running", "the container itself still runs");
	await again.kill(c.id, "TERM");
	const ac = new AbortController();
	const timer = setTimeout(() => ac.abort(), 10_000);
	const code = await again.wait(c.id, { signal: ac.signal });
	clearTimeout(timer);
	t.equal(code, EXIT_UNKNOWN, "wait() returns: the code is unknown, its collector died");
	t.match(again.inspect(c.id).reason ?? "", /exit code unknown/);
	await again.remove(c.id);
	t.same(again.cgroupDirsOf(c.id), [], "no cgroup left");
	t.notOk(mounted(c.id), "no mount left");
});

t.test("after a host restart (every process gone at once) containers are marked exited and swept", async (t) => {
	const c = await rt.prepare({ image: "busybox", cmd: ["sleep", "300"] });
	t.teardown(() => rt.remove(c.id, { force: true }).catch(() => {}));
	const started = await rt.start(c.id);
	// What a power cut does: the shim, runc, the log daemon and the container die without cleaning up.
	const init = await waitFor("runc to record the init", () => runcInit(c.id));
	const logd = await waitFor("the log daemon", () => {
		try {
			return Number(readFileSync(join(dir.path, "logd.pid"), "utf8").split(" ")[0]) || undefined;
		} catch {
			return undefined;
		}
	});
	const procs = [started.shimPid!, ...children(started.shimPid!), init, logd];
	for (const p of procs) killPid(p);
	await waitFor("all of them to be gone", () => procs.every((p) => !existsSync(`/proc/${p}`)));
	t.ok(rt.cgroupDirsOf(c.id).length > 0 && mounted(c.id), "the cgroup and mount were left behind");
	const again = new Runtime({ root: dir.path, cgroupParent });
	const st = again.inspect(c.id);
	t.equal(st.status, "exited");
	t.equal(st.exitCode, EXIT_UNKNOWN);
	t.equal(await again.wait(c.id), EXIT_UNKNOWN, "wait() does not hang");
	t.same(again.cgroupDirsOf(c.id), [], "the sweep removed its cgroups");
	t.notOk(mounted(c.id), "and unmounted its rootfs");
	t.notOk(existsSync(join(dir.path, "runc", c.id)), "and runc's state");
	await again.remove(c.id);
});

t.test("bad input is refused with named errors and leaves nothing", async (t) => {
	const before = readdirSync(join(dir.path, "containers")).length;
	await t.rejects(rt.prepare({ image: "busybox", memory: "12QB", cmd: ["true"] }), InvalidSpecError);
	await t.rejects(rt.prepare({ image: "busybox", cpus: "-1", cmd: ["true"] }), /invalid cpus value "-1"/);
	await t.rejects(rt.prepare({ image: "busybox", env: ["NOEQUALS"], cmd: ["true"] }), /invalid environment entry/);
	await t.rejects(rt.prepare({ image: "busybox", user: "ghost", cmd: ["true"] }), /user "ghost" is not in the image/);
	await t.rejects(rt.prepare({ image: "nosuchimage", cmd: ["true"] }), { code: "ERR_IMAGE_NOT_FOUND" });
	await t.rejects(rt.prepare({ image: "busybox", platform: "linux/riscv64", cmd: ["true"] }), {
		code: "ERR_IMAGE_NOT_FOUND",
	});
	t.equal(readdirSync(join(dir.path, "containers")).length, before, "no container dir was left behind");
	t.notOk(
		readFileSync("/proc/self/mountinfo", "utf8").includes(join(dir.path, "containers")),
		"no mount was left behind",
	);
});

t.test("seccomp: Docker's default restrictions apply; unconfined lifts them; a bad profile is refused", async (t) => {
	const confined = await runOnce({
		cmd: ["sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true; echo user=$?; unshare -n true; echo net=$?"],
	});
	t.match(confined.stdout, /Seccomp:\s+2/, "a seccomp filter is active");
	t.match(confined.stdout, /user=1/, "no user namespaces");
	t.match(confined.stdout, /net=1/, "no network namespaces");
	t.match(confined.stderr, /Operation not permitted/);
	const free = await runOnce({
		seccomp: "unconfined",
		cmd: ["sh", "-c", "grep Seccomp: /proc/self/status; unshare -U true; echo user=$?"],
	});
	t.match(free.stdout, /Seccomp:\s+0/, "unconfined: no filter");
	t.match(free.stdout, /user=0/, "unconfined: a user namespace can be made (it needs no capability)");
	const arm = await runOnce({ platform: "linux/arm64", cmd: ["sh", "-c", "unshare -U true; echo user=$?"] });
	t.match(arm.stdout, /user=1/, "the filter holds for emulated (qemu) containers too");
	await t.rejects(rt.prepare({ image: "busybox", seccomp: "/nonexistent/profile.json" }), InvalidSpecError);
});

t.test("a container pins its image: image rm refuses without force, prune keeps its layers", async (t) => {
	const own = tempDir("rt-pin-");
	t.teardown(own.remove);
	const rt2 = new Runtime({ root: own.path, cgroupParent });
	await rt2.images.load((await ensureTestImages()).archivePath, { platform: "linux/amd64" });
	const c = await rt2.prepare({ image: "busybox", cmd: ["sleep", "300"] });
	t.teardown(async () => {
		await rt2.remove(c.id, { force: true }).catch(() => {});
		await stopLogDaemon(own.path);
	});
	await rt2.start(c.id);
	t.throws(() => rt2.removeImage("busybox"), ImageInUseError, "image rm refuses while a container uses it");
	t.throws(() => rt2.removeImage(c.image), { message: new RegExp(c.id.slice(0, 12)) }, "and names the container");
	rt2.removeImage("busybox", { force: true });
	t.throws(() => rt2.images.resolve("busybox"), { code: "ERR_IMAGE_NOT_FOUND" }, "the tag is gone");
	rt2.pruneImages();
	const layers = rt2.images.resolve(c.imageDigest!).layerDirs;
	t.ok(
		layers.every((d) => existsSync(d)),
		"prune kept the layers of the untagged image",
	);
	const ex = await rt2.exec(c.id, ["sh", "-c", "ls /bin/busybox"], { stdio: "pipe" });
	t.equal(ex.code, 0, "the container still works");
	await rt2.remove(c.id, { force: true });
	rt2.removeImage("httpd"); // it shares busybox's layer
	const freed = rt2.pruneImages();
	t.ok(freed.images >= 1 && freed.layers >= 1, `once the container is gone, prune frees it: ${JSON.stringify(freed)}`);
	t.notOk(existsSync(layers[0]!));
});

t.test("user namespace: root in the container is uid 100000 on the host", async (t) => {
	const r = await runOnce({
		userns: "remap",
		cmd: ["sh", "-c", "id -u; cat /proc/self/uid_map; touch /new && echo wrote"],
	});
	t.equal(r.code, 0, r.stderr);
	t.match(r.stdout, /^0\n\s+0\s+100000\s+65536\nwrote\n$/, "uid 0 inside, mapped to 100000.., the rootfs writable");
	const c = await rt.prepare({ image: "busybox", userns: { hostId: 200000, size: 65536 }, cmd: ["sleep", "300"] });
	t.teardown(() => rt.remove(c.id, { force: true }).catch(() => {}));
	await rt.start(c.id);
	const init = await waitFor("runc to record the init", () => runcInit(c.id));
	t.match(readFileSync(`/proc/${init}/status`, "utf8"), /\nUid:\s+200000\s/, "the host sees an unprivileged uid");
	await rt.remove(c.id, { force: true });
	await t.rejects(rt.prepare({ image: "busybox", userns: { hostId: -1, size: 10 }, cmd: ["true"] }), InvalidSpecError);
});

t.test("a platform the machine cannot run (riscv64, no binfmt handler) is a PlatformUnsupportedError", async (t) => {
	// An image index with a linux/riscv64 entry, built here: the test images have no riscv64 variant.
	const work = tempDir("rv-");
	t.teardown(work.remove);
	const blobs = join(work.path, "blobs", "sha256");
	mkdirSync(blobs, { recursive: true });
	const put = (b: Buffer | string) => {
		const digest = `sha256:${createHash("sha256").update(b).digest("hex")}`;
		writeFileSync(join(blobs, digest.slice(7)), b);
		return { digest, size: Buffer.byteLength(b) };
	};
	const layer = Buffer.alloc(1024); // an empty tar: two zero blocks
	const cfg = JSON.stringify({
		architecture: "riscv64",
		os: "linux",
		config: { Cmd: ["true"] },
		rootfs: { type: "layers", diff_ids: [put(layer).digest] },
	});
	const manifest = JSON.stringify({
		schemaVersion: 2,
		mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: { mediaType: "application/vnd.oci.image.config.v1+json", ...put(cfg) },
		layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...put(layer) }],
	});
	const index = JSON.stringify({
		schemaVersion: 2,
		mediaType: "application/vnd.oci.image.index.v1+json",
		manifests: [
			{
				mediaType: "application/vnd.oci.image.manifest.v1+json",
				...put(manifest),
				platform: { os: "linux", architecture: "riscv64" },
			},
		],
	});
	writeFileSync(join(work.path, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
	writeFileSync(
		join(work.path, "index.json"),
		JSON.stringify({
			schemaVersion: 2,
			manifests: [
				{
					mediaType: "application/vnd.oci.image.index.v1+json",
					...put(index),
					annotations: { "org.opencontainers.image.ref.name": "rv/app:1" },
				},
			],
		}),
	);
	await rt.images.load(work.path, { platform: "linux/riscv64" });
	t.equal(rt.images.resolve("rv/app:1", { platform: "linux/riscv64" }).platform.architecture, "riscv64");
	const before = readdirSync(join(dir.path, "containers")).length;
	await t.rejects(rt.prepare({ image: "rv/app:1", platform: "linux/riscv64" }), PlatformUnsupportedError);
	await t.rejects(rt.prepare({ image: "rv/app:1", platform: "linux/riscv64" }), {
		code: "ERR_PLATFORM_UNSUPPORTED",
		message: /cannot run linux\/riscv64 here: no binfmt handler for riscv64/,
	});
	t.equal(readdirSync(join(dir.path, "containers")).length, before, "nothing was left behind");
	rt.removeImage("rv/app:1");
});

t.test("a prewarming Runtime (FIFOs made ahead): stdout/stderr are FIFOs the container can reopen", async (t) => {
	const warm = new Runtime({ root: dir.path, cgroupParent, prewarmShim: true, sweep: false });
	const pool = join(dir.path, "fifos");
	const spares = await waitFor("FIFOs made ahead", () => {
		const names = existsSync(pool) ? readdirSync(pool) : [];
		return names.length >= 2 ? new Set(names.map((n) => statSync(join(pool, n)).ino)) : undefined;
	});
	for (const n of [1, 2, 3]) {
		const c = await warm.prepare({
			image: "busybox",
			cmd: ["sh", "-c", `echo out${n} > /dev/stdout; echo err${n} > /dev/stderr; exit ${n}`],
		});
		const st = await warm.start(c.id);
		if (n === 1)
			t.ok(spares.has(statSync(join(warm.inspect(c.id).dir, "out.fifo")).ino), "stdout is a FIFO of the pool");
		t.equal(await warm.wait(c.id), n, `exit code ${n}`);
		t.same(warm.logs(c.id), { stdout: `out${n}\n`, stderr: `err${n}\n` }, "both streams logged");
		await waitFor("its shim to end", () => procStart(st.shimPid!) !== st.shimStart);
		await warm.remove(c.id);
	}
	// A shim that dies takes the exit code with it; the container is still noticed ending.
	const c = await warm.prepare({ image: "busybox", cmd: ["sleep", "300"] });
	t.teardown(() => warm.remove(c.id, { force: true }).catch(() => {}));
	const st = await warm.start(c.id);
	const init = await waitFor("runc to record the init", () => runcInit(c.id));
	killPid(st.shimPid!);
	await waitFor("the shim to be gone", () => procStart(st.shimPid!) !== st.shimStart);
	t.equal(warm.inspect(c.id).status, "running", "the container outlives its shim");
	killPid(init);
	t.equal(await warm.wait(c.id), EXIT_UNKNOWN, "and its end is noticed without the shim");
	await warm.remove(c.id);
	t.same(warm.cgroupDirsOf(c.id), [], "no cgroup left");
	t.notOk(mounted(c.id), "no mount left");
});

t.test("a prewarming Runtime starts no log daemon before its first container starts; that start does", async (t) => {
	const own = tempDir("rt-logd-");
	const warm = new Runtime({ root: own.path, cgroupParent, prewarmShim: true });
	t.teardown(async () => {
		for (const c of warm.list({ all: true })) await warm.remove(c.id, { force: true }).catch(() => {});
		await stopLogDaemon(own.path);
		own.remove();
	});
	await warm.images.load((await ensureTestImages()).archivePath, { platform: "linux/amd64" });
	const pool = join(own.path, "fifos");
	await waitFor("FIFOs made ahead", () => existsSync(pool) && readdirSync(pool).length >= 2);
	// spawnLogd opens logd.log before it spawns, and the spares' timer spawned before it made FIFOs.
	t.notOk(existsSync(join(own.path, "logd.log")), "the spares were made without a log daemon");
	const c = await warm.prepare({ image: "busybox", cmd: ["sh", "-c", "echo hello; sleep 300"] });
	t.notOk(logdAlive(own.path), "none runs after a prepare either");
	await warm.start(c.id);
	await waitFor("a log daemon", () => logdAlive(own.path));
	t.pass("the first start started one (positive control)");
	await waitFor("its log", () => warm.logs(c.id).stdout === "hello\n");
	t.pass("and it logs the container's output");
});
