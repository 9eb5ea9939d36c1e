// install.sh and the release binary under a real systemd: a Debian root (scripts/systemd-rootfs.sh)
// booted with systemd-nspawn, systemd as its PID 1, in a network namespace, cgroups and an overlay
// of the test's own. What the unit promises: the agent runs and starts on boot, a container and its
// shim survive `systemctl restart` (KillMode=process), `kill -9` brings the agent back (Restart=always),
// an upgrade (install.sh with the next version) keeps the node, its service and its container, a
// reboot starts it again, and `install.sh --uninstall` stops and removes it. Everything it made goes at the end, also on failure.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
	closeSync,
	existsSync,
	mkdirSync,
	openSync,
	readdirSync,
	readFileSync,
	readlinkSync,
	rmdirSync,
} from "node:fs";
import { dirname, join } from "node:path";
import t from "tap";
import { ensureTestImages } from "../helpers/images.ts";
import { tempDir, uniqueName, waitFor } from "../helpers/index.ts";
import { releaseFixture } from "./fixtures.ts";

const rel = releaseFixture(["amd64"]);
const version = (
	JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;
const NEXT = `${version}-next`;
const next = releaseFixture(["amd64"], NEXT);
const rootfsScript = new URL("../../scripts/systemd-rootfs.sh", import.meta.url).pathname;
const CG = "/sys/fs/cgroup";
const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Host pid of the process that is `nsPid` in the pid namespace of `leader` (the container's init). */
function hostPid(leader: number, nsPid: number): number | undefined {
	const ns = readlinkSync(`/proc/${leader}/ns/pid`);
	for (const e of readdirSync("/proc")) {
		if (!/^\d+$/.test(e)) continue;
		try {
			if (readlinkSync(`/proc/${e}/ns/pid`) !== ns) continue;
			const ids = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${e}/status`, "utf8"))?.[1]?.split(/\s+/);
			if (ids && Number(ids.at(-1)) === nsPid) return Number(e);
		} catch {} // gone meanwhile
	}
	return undefined;
}
/** The start time in a /proc/PID/stat text (field 22): a pid and this name one process, never a reused pid. */
const statStart = (stat: string) => stat.split(") ")[1]?.split(" ")[19];
/** A process's start time, or undefined when it is gone. */
function startTime(pid: number): string | undefined {
	try {
		return statStart(readFileSync(`/proc/${pid}/stat`, "utf8"));
	} catch {
		return undefined;
	}
}
/** Removes a cgroup tree, deepest first; what still has processes stays (and is named). */
function removeCgroupTree(dir: string): string[] {
	if (!existsSync(dir)) return [];
	const left = readdirSync(dir, { withFileTypes: true })
		.filter((e) => e.isDirectory())
		.flatMap((e) => removeCgroupTree(join(dir, e.name)));
	try {
		rmdirSync(dir);
	} catch {
		left.push(dir);
	}
	return left;
}
const mountedBelow = (dir: string) =>
	readFileSync("/proc/self/mountinfo", "utf8")
		.split("\n")
		.some((l) => `${l.split(" ")[4]}/`.startsWith(`${dir}/`));

t.test("install.sh under a booted systemd: the unit runs, restarts and uninstalls as promised", async (t) => {
	const rootfs = spawnSync("sh", [rootfsScript, "--path"], { encoding: "utf8" });
	t.equal(rootfs.status, 0, rootfs.stderr);
	if (rootfs.status !== 0) return;
	const lower = rootfs.stdout.trim();
	const images = await ensureTestImages();
	const name = uniqueName("tsysd");
	const work = tempDir(`tsswarm-${name}-`);
	const dirs = { upper: "upper", work: "work", root: "root", data: "data" } as const;
	for (const d of Object.values(dirs)) mkdirSync(join(work.path, d));
	const root = join(work.path, dirs.root);
	const data = join(work.path, dirs.data);
	const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: "utf8", timeout: 60_000 });
	const must = (cmd: string, args: string[]) => {
		const r = sh(cmd, args);
		if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr || r.error}`);
	};

	// Teardown, in the reverse order of what follows (t.teardown runs the last-added first).
	t.teardown(() => {
		// Never remove through a mount: the rootfs overlay or the container's binds.
		if (!mountedBelow(work.path)) work.remove();
		else t.fail(`${work.path} still has mounts below it; left in place`);
	});
	// Each hierarchy's root: this machine has cgroups v1 (hybrid); on a v2-only host, the one root
	// (that layout is untested here).
	const v2 = existsSync(join(CG, "cgroup.controllers"));
	const hierarchies = v2
		? [CG]
		: readdirSync(CG)
				.filter((c) => existsSync(join(CG, c, "cgroup.procs")))
				.map((c) => join(CG, c));
	t.teardown(async () => {
		// The container's processes are gone with its init; their cgroups may take a moment to empty.
		let left: string[] = [];
		await waitFor(
			"the test's cgroups to be removed",
			() => {
				left = hierarchies.flatMap((h) => removeCgroupTree(join(h, name)));
				return left.length === 0;
			},
			{ timeoutMs: 30_000, intervalMs: 200 },
		).catch(() => t.fail(`cgroups left: ${left.join(", ")}`));
		// nspawn keeps a directory per machine here (on this host /run is no tmpfs, so it says it cannot remove it).
		try {
			rmdirSync(`/run/systemd/nspawn/propagate/${name}`);
		} catch {}
	});
	for (const h of hierarchies) mkdirSync(join(h, name));
	if (existsSync(join(CG, "cpuset", "cpuset.cpus"))) {
		// A new v1 cpuset has no CPUs: runc copies them from the parent, so the parent needs them.
		for (const f of ["cpuset.cpus", "cpuset.mems"])
			must("sh", ["-c", `cat ${CG}/cpuset/${f} > ${CG}/cpuset/${name}/${f}`]);
	}
	t.teardown(() => sh("ip", ["netns", "del", name]));
	must("ip", ["netns", "add", name]);
	// An address for the agent to advertise: a veth pair inside the namespace (nothing leaves it).
	for (const args of [
		["link", "set", "lo", "up"],
		["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
		["addr", "add", "198.18.7.1/24", "dev", "v0"],
		["link", "set", "v0", "up"],
		["link", "set", "v1", "up"],
	])
		must("ip", ["-n", name, ...args]);
	t.teardown(() => {
		if (sh("umount", [root]).status !== 0) t.fail(`could not unmount ${root}`);
	});
	must("mount", [
		"-t",
		"overlay",
		"overlay",
		"-o",
		`lowerdir=${lower},upperdir=${join(work.path, dirs.upper)},workdir=${join(work.path, dirs.work)}`,
		root,
	]);

	// At power-off, what KillMode=process left of the unit (shims, runc, the containers, whose init
	// as PID 1 ignores SIGTERM) gets systemd's last SIGTERM and DefaultTimeoutStopSec (90 s) to go
	// before SIGKILL, unless the agent stopped its containers itself (it does when the host shuts
	// down). This root waits 30 s, so that a power-off well under that shows the agent did.
	must("mkdir", ["-p", join(root, "etc/systemd/system.conf.d")]);
	must("sh", [
		"-c",
		`printf '[Manager]\\nDefaultTimeoutStopSec=30s\\n' > ${root}/etc/systemd/system.conf.d/tsswarm-test.conf`,
	]);

	// systemd-nspawn without machined (--register=no) and without a scope of its own (--keep-unit):
	// it runs in the test's cgroups, moved there first, so its payload/ and supervisor/ are ours.
	// The agent needs what a real host gives root: every capability, no seccomp filter (runc's
	// keyctl is refused under nspawn's), and writable cgroup controllers (remounted below).
	const console = join(work.path, "console.log");
	const join1 = hierarchies.map((h) => `echo $$ > ${h}/${name}/cgroup.procs`).join("; ");
	/** One boot of the container, until it powers off (a reboot is a power-off and a boot here). */
	interface Boot {
		nspawn: ChildProcess;
		exited: Promise<void>;
		alive(): boolean;
		leader: number;
	}
	let boot: Boot | undefined;
	/** Powers the container off (SIGTERM: nspawn asks its systemd to); if it hangs, kills its init. */
	const powerOff = async (b: Boot) => {
		if (b.alive()) b.nspawn.kill("SIGTERM");
		const down = await Promise.race([b.exited.then(() => true), new Promise((r) => setTimeout(r, 60_000, false))]);
		if (down) return;
		t.fail("the container did not power off within 60 s; killing its init");
		if (b.leader) spawnSync("kill", ["-KILL", String(b.leader)]); // ends its whole pid namespace
		await Promise.race([b.exited, new Promise((r) => setTimeout(r, 10_000))]);
		if (b.alive()) b.nspawn.kill("SIGKILL");
		await b.exited;
	};
	t.teardown(() => (boot ? powerOff(boot) : undefined));
	const start = async (): Promise<Boot> => {
		const out = openSync(console, "a");
		const nspawn: ChildProcess = spawn(
			"sh",
			[
				"-c",
				`${join1}; exec "$@"`,
				"sh",
				"systemd-nspawn",
				"--quiet",
				"--boot",
				`--directory=${root}`,
				`--machine=${name}`,
				"--register=no",
				"--keep-unit",
				"--capability=all",
				`--network-namespace-path=/run/netns/${name}`,
				`--bind=${data}:/var/lib/tsswarm`,
				`--bind-ro=${rel.dir}:/mnt/release`,
				`--bind-ro=${next.dir}:/mnt/next`,
				`--bind-ro=${dirname(images.archivePath)}:/mnt/images`,
			],
			{ stdio: ["ignore", out, out], env: { PATH, SYSTEMD_SECCOMP: "0", SYSTEMD_LOG_COLOR: "0" } },
		);
		closeSync(out);
		const b: Boot = {
			nspawn,
			exited: new Promise<void>((r) => nspawn.once("exit", () => r())),
			alive: () => nspawn.exitCode === null && nspawn.signalCode === null,
			leader: 0,
		};
		boot = b;
		b.leader = await waitFor(
			"the container's init",
			() => {
				if (!b.alive()) throw new Error(`systemd-nspawn exited: ${readFileSync(console, "utf8").slice(-2000)}`);
				const kids = readFileSync(`/proc/${nspawn.pid}/task/${nspawn.pid}/children`, "utf8").trim();
				const pid = Number(kids.split(" ")[0]);
				return pid && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("systemd") ? pid : 0;
			},
			{ timeoutMs: 60_000, intervalMs: 100 },
		);
		const state = await waitFor(
			"systemd to finish booting",
			() => {
				const s = inside(["systemctl", "is-system-running"], 10_000).stdout.trim();
				return ["running", "degraded"].includes(s) ? s : undefined;
			},
			{ timeoutMs: 120_000, intervalMs: 250 },
		);
		// Not the subject here (a unit of the test root failing under load), but said.
		if (state !== "running") t.comment(`degraded: ${inside(["systemctl", "--failed", "--no-legend"]).stdout}`);
		t.equal(inside(["cat", "/proc/1/comm"]).stdout.trim(), "systemd", "systemd is PID 1");
		// nspawn mounts the v1 controllers read-only (they are the test's cgroups, its namespace's root).
		for (const h of v2 ? [] : hierarchies.filter((h) => !/\/(systemd|unified)$/.test(h)))
			ok(["mount", "-o", "remount,bind,rw", h]);
		return b;
	};
	const leader = () => boot?.leader ?? 0;
	/** A command inside the container (all its namespaces and its root). */
	const inside = (argv: string[], timeout = 120_000) =>
		spawnSync("nsenter", ["-t", String(leader()), "-a", "--", ...argv], {
			encoding: "utf8",
			env: { PATH, LANG: "C.UTF-8", SYSTEMD_COLORS: "0" },
			timeout,
		});
	const ok = (argv: string[]) => {
		const r = inside(argv);
		if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}: ${r.stderr}`);
		return r.stdout;
	};
	const show = (prop: string) => inside(["systemctl", "show", "--value", "-p", prop, "tsswarm"]).stdout.trim();
	const t0 = Date.now();
	const phase = (what: string) => t.comment(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
	await start();
	phase("booted");

	const binary = `/mnt/release/tsswarm-${version}-linux-amd64`;
	const inst = inside(["sh", "/mnt/release/install.sh", "--binary", binary]);
	t.equal(inst.status, 0, inst.stderr);
	t.match(inst.stderr, /started tsswarm\.service/);
	t.equal(show("UnitFileState"), "enabled", "enabled: it starts on boot");
	await waitFor(
		"tsswarm.service to be active",
		() => inside(["systemctl", "is-active", "tsswarm"]).stdout === "active\n",
		{
			timeoutMs: 30_000,
			intervalMs: 250,
		},
	);
	await waitFor("the agent's socket", () => existsSync(join(data, "api/tsswarm.sock")), { timeoutMs: 30_000 });
	t.equal(ok(["tsswarm", "--version"]).trim(), version);

	t.match(ok(["tsswarm", "image", "load", `/mnt/images/${images.archivePath.split("/").at(-1)}`]), /busybox/);
	t.match(ok(["tsswarm", "init"]), /initialized: node \S+ is now a manager/);
	// busybox sleep as PID 1 ignores SIGTERM: stopping it takes its whole grace period, 1 s.
	ok([
		"tsswarm",
		"service",
		"create",
		"--detach",
		"--name",
		"sleeper",
		"--stop-grace-period",
		"1s",
		"busybox",
		"sleep",
		"100000",
	]);
	const id = await waitFor(
		"the service's container",
		() => ok(["tsswarm", "ps", "-q", "--no-trunc"]).trim() || undefined,
		{
			timeoutMs: 60_000,
			intervalMs: 250,
		},
	);
	t.match(id, /^[0-9a-f]{64}$/, "one running container");
	const st = JSON.parse(readFileSync(join(data, "containers", id, "state.json"), "utf8")) as { shimPid: number };
	const shim = hostPid(leader(), st.shimPid);
	t.ok(shim, "the shim runs");
	const shimStart = startTime(shim!);
	const unitCgroup = join(v2 ? CG : join(CG, "systemd"), name, "payload", show("ControlGroup"));
	const inUnit = () =>
		readFileSync(join(unitCgroup, "cgroup.procs"), "utf8").trim().split("\n").filter(Boolean).map(Number);
	t.ok(inUnit().includes(shim!), "the shim was started by the agent, in the unit's cgroup");
	// The container's processes: in the cgroup the runtime made for it (/tsswarm/ID), as the host sees it.
	const ctrCgroup = hierarchies
		.flatMap((h) => [join(h, name, "tsswarm", id), join(h, name, "payload", "tsswarm", id)])
		.find(existsSync);
	t.ok(ctrCgroup, "the container has its cgroup");
	const procs = readFileSync(join(ctrCgroup!, "cgroup.procs"), "utf8").trim().split("\n");
	const init = Number(procs[0]);
	const initStart = startTime(init);
	t.ok(initStart, "the container's init runs");

	phase("installed, initialized, container running");
	/** Waits for the agent (after a restart) to list the one container again. */
	const listsTheContainer = (who: string) =>
		waitFor(`${who} to list the container`, () => ok(["tsswarm", "ps", "-q", "--no-trunc"]).trim() === id, {
			timeoutMs: 30_000,
			intervalMs: 250,
		});
	// systemctl restart: a new agent; the shim and the container are the same processes.
	const main1 = Number(show("MainPID"));
	t.ok(main1 > 0);
	ok(["systemctl", "restart", "tsswarm"]);
	const main2 = Number(show("MainPID"));
	t.not(main2, main1, "restart started a new agent");
	t.equal(startTime(shim!), shimStart, "the shim lived through the restart (KillMode=process)");
	t.equal(startTime(init), initStart, "so did the container");
	await listsTheContainer("the new agent");

	phase("restarted");
	// kill -9 of the main pid (from outside: a crash): Restart=always brings the agent back.
	const restarts = Number(show("NRestarts"));
	spawnSync("kill", ["-KILL", String(hostPid(leader(), main2))]);
	const main3 = await waitFor(
		"systemd to restart the killed agent (RestartSec=5)",
		() => {
			const pid = Number(show("MainPID"));
			return pid > 0 && pid !== main2 && show("ActiveState") === "active" ? pid : 0;
		},
		{ timeoutMs: 60_000, intervalMs: 250 },
	);
	t.ok(main3, "a new agent after kill -9");
	t.equal(Number(show("NRestarts")), restarts + 1, "counted as an automatic restart");
	t.equal(startTime(shim!), shimStart, "the shim lived through the crash");
	await listsTheContainer("the restarted agent");

	phase("back after kill -9");

	// Upgrade: install.sh with the next version replaces the binary and restarts the unit.
	const self = () =>
		(JSON.parse(ok(["tsswarm", "node", "ls", "--format", "json"])) as { id: string; self: boolean }[]).find(
			(n) => n.self,
		)?.id;
	const nodeId = await waitFor("the node's id before the upgrade", self, { timeoutMs: 30_000, intervalMs: 250 });
	const manifest = readFileSync(join(root, "etc/tsswarm/installed-files"), "utf8");
	const up = inside(["sh", "/mnt/next/install.sh", "--binary", `/mnt/next/tsswarm-${NEXT}-linux-amd64`]);
	t.equal(up.status, 0, up.stderr);
	t.match(up.stderr, new RegExp(`verified tsswarm-${NEXT}-linux-amd64`));
	t.equal(ok(["tsswarm", "--version"]).trim(), NEXT, "the new binary is installed");
	const main4 = Number(show("MainPID"));
	t.not(main4, main3, "the installer restarted the agent");
	t.match(readFileSync(`/proc/${hostPid(leader(), main4)}/cmdline`, "utf8"), /^\/usr\/local\/bin\/tsswarm\0agent/);
	t.equal(readFileSync(join(root, "etc/tsswarm/installed-files"), "utf8"), manifest, "the same files listed");
	t.equal(startTime(shim!), shimStart, "the shim lived through the upgrade");
	t.equal(startTime(init), initStart, "so did the container");
	t.equal(
		await waitFor("the upgraded agent to answer", self, { timeoutMs: 30_000, intervalMs: 250 }),
		nodeId,
		"same node",
	);
	await listsTheContainer("the upgraded agent");
	phase("upgraded");
	// Positive control: with the default KillMode (control-group) the same restart kills the shim,
	// so the checks above can see a shim die. (runc forwards SIGTERM to the container's init, which
	// as PID 1 of its namespace ignores it: a short stop timeout instead of the default 90 s.)
	ok(["mkdir", "-p", "/run/systemd/system/tsswarm.service.d"]);
	ok([
		"sh",
		"-c",
		"printf '[Service]\\nKillMode=control-group\\nTimeoutStopSec=3\\n' > /run/systemd/system/tsswarm.service.d/kill.conf",
	]);
	ok(["systemctl", "daemon-reload"]);
	ok(["systemctl", "restart", "tsswarm"]);
	await waitFor("the shim to be killed with KillMode=control-group", () => startTime(shim!) !== shimStart, {
		timeoutMs: 30_000,
	});
	ok(["rm", "-r", "/run/systemd/system/tsswarm.service.d"]);
	ok(["systemctl", "daemon-reload"]);
	t.equal(show("KillMode"), "process", "the unit's own KillMode again");

	phase("KillMode control done");

	// Reboot (power off, boot again): the enabled unit starts the agent with nobody asking, the node
	// is the same, and its service's task runs again in a new container (the old one died with it).
	const running = await waitFor(
		"the task to run again after the control",
		() => ok(["tsswarm", "ps", "-q", "--no-trunc"]).trim(),
		{
			timeoutMs: 60_000,
			intervalMs: 250,
		},
	);
	const first = boot!;
	const off = Date.now();
	await powerOff(first);
	const offMs = Date.now() - off;
	t.comment(`powered off in ${offMs} ms`);
	t.ok(!first.alive(), "powered off");
	// Without the agent stopping its task's container, systemd waits DefaultTimeoutStopSec (30 s).
	t.ok(offMs < 20_000, `powered off in ${offMs} ms, not after systemd's 30 s stop timeout`);
	await start();
	await waitFor("tsswarm.service to start on boot", () => show("ActiveState") === "active", {
		timeoutMs: 60_000,
		intervalMs: 250,
	});
	// The previous boot's journal (persistent in this root) says what the agent saw and did at
	// power-off: a slow power-off is explained here rather than guessed at.
	const stopLog = ok(["journalctl", "-b", "-1", "-u", "tsswarm", "-o", "short-monotonic", "--no-pager"]).split("\n");
	const knew = stopLog.slice(-20).some((l) => /"stopTasks":true/.test(l));
	const shown = knew
		? stopLog.filter((l) => /agent stop|shutting down|timed out|Killing/i.test(l)).slice(-6)
		: stopLog.slice(-80);
	for (const l of shown) t.comment(`previous boot: ${l.slice(0, 400)}`);
	t.ok(knew, "at power-off the agent knew the host was shutting down");
	t.equal(
		await waitFor("the agent to answer after the reboot", self, { timeoutMs: 30_000, intervalMs: 250 }),
		nodeId,
		"same node",
	);
	const again = await waitFor(
		"the service's task to run again after the reboot",
		() => {
			const q = ok(["tsswarm", "ps", "-q", "--no-trunc"]).trim();
			return q && q !== running ? q : undefined;
		},
		{ timeoutMs: 120_000, intervalMs: 500 },
	);
	t.match(again, /^[0-9a-f]{64}$/, "one new container");
	phase("rebooted");
	// Uninstall with the service's task still running: the agent is stopped and, while its binary
	// is still there, the installer removes the node's containers (KillMode=process would leave
	// them running with nothing to remove them). The data dir stays.
	const containers = () => readdirSync(join(data, "containers"));
	t.ok(containers().includes(again), "the task's container is there before uninstall (positive control)");
	const nsInit = (
		JSON.parse(readFileSync(join(data, "runc", again, "state.json"), "utf8")) as { init_process_pid: number }
	).init_process_pid;
	// runc's pid is the one in the booted root's pid namespace: its start time, read in there.
	const startInside = (pid: number) => statStart(inside(["cat", `/proc/${pid}/stat`]).stdout);
	const againStart = startInside(nsInit);
	t.ok(againStart, "the task's init runs before uninstall (positive control)");
	const before = inUnit();
	t.ok(before.length > 0, "the unit has processes before uninstall (positive control)");
	const un = inside(["sh", "/mnt/release/install.sh", "--uninstall"]);
	t.equal(un.status, 0, un.stderr);
	t.match(un.stderr, /kept the data dir \/var\/lib\/tsswarm/);
	t.match(un.stderr, /removing this node's \d+ container\(s\)/);
	t.same(containers(), [], "no container left in the data dir");
	t.not(startInside(nsInit), againStart, "the task's init is gone");
	t.not(inside(["systemctl", "cat", "tsswarm"]).status, 0, "systemd no longer knows the unit");
	t.equal(show("ActiveState"), "inactive");
	for (const f of ["/etc/systemd/system/tsswarm.service", "/usr/local/bin/tsswarm", "/etc/tsswarm"])
		t.not(inside(["test", "-e", f]).status, 0, `${f} removed`);
	t.ok(existsSync(join(data, "cluster")), "the data dir is kept");
	// KillMode=process leaves the agent's helpers (the log daemon exits 10 s after its last container).
	await waitFor(
		"no process left in the unit's cgroup",
		() => {
			try {
				return inUnit().length === 0;
			} catch {
				return true; // systemd removed the cgroup
			}
		},
		{ timeoutMs: 60_000, intervalMs: 250 },
	);
	phase("uninstalled, nothing left");
});
