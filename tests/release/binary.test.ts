// The release executables, built once for this file: each runs where no Node and no node_modules
// can be reached (a copy in a temp dir, a PATH without node); the amd64 one loads the test images,
// runs a container and its helpers as hidden subcommands, and runs agents in a lab; arm64 via qemu
// (--version, and image load + run --rm in a lab node).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import type { Socket } from "node:dgram";
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, readSync } from "node:fs";
import type { AddressInfo, Server } from "node:net";
import { join } from "node:path";
import t from "tap";
import { socketPath } from "../../agent/api/index.ts";
import { netnsArgv } from "../../cli/lab/index.ts";
import { ensureTestImages } from "../helpers/images.ts";
import { tempDir, uniqueName, waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import { fileRuntime } from "../helpers/runtime.ts";
import { pathWithout, releaseFixture } from "./fixtures.ts";

const rel = releaseFixture(["amd64", "arm64"]);
const version = (
	JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;
const PATH = pathWithout(["node", "nodejs", "npm", "npx", "corepack"]);
const away = tempDir("tsswarm-bin-");
t.teardown(away.remove);
// No images loaded by the fixture: the binary loads them itself.
const { rt, dir, cgroupParent } = fileRuntime("rel", { platforms: [] });

/** The amd64 binary, copied out of the repo (nothing beside it; no node_modules above it). */
const bin = () => {
	const dest = join(away.path, "tsswarm");
	if (!existsSync(dest)) copyFileSync(rel.get().binaries.amd64!, dest);
	spawnSync("chmod", ["0755", dest]);
	return dest;
};
const env = () => ({ PATH, TSSWARM_DATA_ROOT: dir.path, TSSWARM_CGROUP_PARENT: cgroupParent });
const run = (args: string[]) =>
	spawnSync(bin(), args, { encoding: "utf8", env: env(), cwd: away.path, timeout: 60_000 });
const cmdline = (pid: number) => {
	try {
		return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
	} catch {
		return undefined;
	}
};
const elfMachine = (file: string) => {
	const fd = openSync(file, "r");
	const b = Buffer.alloc(20);
	readSync(fd, b, 0, 20, 0);
	closeSync(fd);
	return b.readUInt16LE(18); // e_machine: 62 x86-64, 183 aarch64
};

t.test("the PATH the binaries run with has no node", async (t) => {
	t.not(spawnSync("sh", ["-c", "command -v node"], { env: { PATH } }).status, 0, "no node on it");
	t.equal(spawnSync("sh", ["-c", "command -v runc"], { env: { PATH } }).status, 0, "runc is (positive control)");
});

t.test("SHA256SUMS names each binary and install.sh with its hash", async (t) => {
	const r = rel.get();
	t.equal(r.version, version);
	const lines = readFileSync(r.sums, "utf8").trim().split("\n");
	const names = [`tsswarm-${version}-linux-amd64`, `tsswarm-${version}-linux-arm64`, "install.sh"];
	t.same(
		lines.map((l) => l.split("  ")[1]),
		names,
	);
	for (const l of lines) {
		const [hash, name] = l.split("  ");
		t.equal(
			createHash("sha256")
				.update(readFileSync(join(rel.dir, name!)))
				.digest("hex"),
			hash,
			`${name}'s hash`,
		);
	}
	t.equal(elfMachine(r.binaries.amd64!), 62, "amd64 is an x86-64 ELF");
	t.equal(elfMachine(r.binaries.arm64!), 183, "arm64 is an aarch64 ELF");
});

t.test("amd64: --version with no Node and no node_modules reachable", async (t) => {
	const r = run(["--version"]);
	t.equal(r.status, 0, r.stderr);
	t.equal(r.stdout, `${version}\n`);
	t.equal(r.stderr, "", "no experimental-feature warning");
	const help = run(["--help"]);
	t.equal(help.status, 0, help.stderr);
	t.match(help.stdout, /agent \[options\]/, "the same file is the CLI and the agent");
	t.notMatch(help.stdout, /__log-daemon|__health-runner|__netns-socket/, "the helper subcommands are hidden");
});

t.test("arm64: --version through qemu-user", async (t) => {
	const exe = join(away.path, "tsswarm-arm64");
	copyFileSync(rel.get().binaries.arm64!, exe);
	spawnSync("chmod", ["0755", exe]);
	// Node's arm64 build is linked against glibc: qemu finds it in Debian's cross libc (bootstrap).
	const r = spawnSync("qemu-aarch64-static", [exe, "--version"], {
		encoding: "utf8",
		env: { PATH, QEMU_LD_PREFIX: "/usr/aarch64-linux-gnu" },
		cwd: away.path,
		timeout: 120_000,
	});
	t.equal(r.status, 0, r.stderr);
	t.equal(r.stdout, `${version}\n`);
});

t.test("arm64: image load and run --rm in a lab node through qemu-user", async (t) => {
	const exe = join(away.path, "tsswarm-arm64");
	if (!existsSync(exe)) copyFileSync(rel.get().binaries.arm64!, exe);
	spawnSync("chmod", ["0755", exe]);
	const images = await ensureTestImages();
	const lab = await withLab(t, { nodes: 1 });
	const n = lab.nodes[0]!;
	// Helpers the binary starts (itself again, runc's children) reach qemu through binfmt_misc.
	const inNode = (args: string[]) => {
		const [cmd, ...rest] = netnsArgv(lab.record, n.name, ["qemu-aarch64-static", exe, ...args]);
		return spawnSync(cmd!, rest, {
			encoding: "utf8",
			env: {
				PATH,
				QEMU_LD_PREFIX: "/usr/aarch64-linux-gnu",
				TSSWARM_DATA_ROOT: n.dir,
				TSSWARM_CGROUP_PARENT: n.netns,
			},
			timeout: 300_000,
		});
	};
	const load = inNode(["image", "load", images.archivePath]);
	t.equal(load.status, 0, load.stderr);
	t.match(load.stdout, /Loaded image: docker\.io\/library\/busybox:latest/);
	const r = inNode(["run", "--rm", "busybox", "uname", "-m"]);
	t.equal(r.status, 0, r.stderr);
	t.equal(r.stdout, "aarch64\n", "the arm64 agent picked busybox's arm64 variant and ran it");
	const ps = inNode(["ps", "-a", "-q"]);
	t.equal(ps.status, 0, ps.stderr);
	t.equal(ps.stdout.trim(), "", "--rm removed it");
});

t.test("amd64: image load and run --rm echo in a temp data root", async (t) => {
	const images = await ensureTestImages();
	const load = run(["image", "load", images.archivePath]);
	t.equal(load.status, 0, load.stderr);
	t.match(load.stdout, /Loaded image: docker\.io\/library\/busybox:latest/);
	const r = run(["run", "--rm", "busybox", "echo", "hello from the release"]);
	t.equal(r.status, 0, r.stderr);
	t.equal(r.stdout, "hello from the release\n");
	t.same(rt.list({ all: true }), [], "--rm removed it");
});

t.test("amd64: the log daemon and the health runner are hidden subcommands of the binary", async (t) => {
	// A long interval: the runner sleeps, so only rm's stopHealth ends it promptly.
	const r = run(["run", "-d", "--health-cmd", "true", "--health-interval", "60s", "busybox", "sleep", "120"]);
	t.equal(r.status, 0, r.stderr);
	const id = r.stdout.trim();
	t.teardown(() => rt.remove(id, { force: true }).catch(() => {}));
	const healthPid = Number(readFileSync(join(dir.path, "containers", id, "health.pid"), "utf8"));
	t.same(cmdline(healthPid)?.slice(0, 3), [
		bin(),
		"__health-runner",
		JSON.stringify(["runc", "--root", join(dir.path, "runc")]),
	]);
	const logd = await waitFor("the log daemon's pid file", () => {
		const pid = Number(readFileSync(join(dir.path, "logd.pid"), "utf8").split(" ")[0]);
		return cmdline(pid) ? pid : undefined;
	});
	t.same(cmdline(logd), [bin(), "__log-daemon", dir.path]);
	const logs = run(["logs", id]);
	t.equal(logs.status, 0, logs.stderr);
	const rm = run(["rm", "-f", id]);
	t.equal(rm.status, 0, rm.stderr);
	await waitFor("the health runner to end with its container", () => cmdline(healthPid) === undefined, {
		timeoutMs: 5000,
	});
});

t.test("amd64: __netns-socket binds in another namespace and hands the sockets over IPC", async (t) => {
	const ns = uniqueName("tswrel");
	t.equal(spawnSync("ip", ["netns", "add", ns]).status, 0);
	t.teardown(() => spawnSync("ip", ["netns", "del", ns]));
	const child = spawn("nsenter", [`--net=/run/netns/${ns}`, bin(), "__netns-socket", "127.0.0.1", "5353", "tcp"], {
		stdio: ["ignore", "ignore", "pipe", "ipc"],
		env: { PATH },
	});
	const got: { kind?: string; address?: string }[] = [];
	const handles: { close(): void }[] = [];
	const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
	child.on("message", (m: { kind?: string }, h: Socket | Server) => {
		handles.push(h);
		const a = h.address() as AddressInfo;
		got.push({ kind: m.kind, address: `${a.address}:${a.port}` });
	});
	t.teardown(() => {
		for (const h of handles) h.close();
	});
	t.equal(await exited, 0, "the helper exits once it has handed both over");
	t.same(got, [
		{ kind: "udp", address: "127.0.0.1:5353" },
		{ kind: "tcp", address: "127.0.0.1:5353" },
	]);
});

t.test("amd64: agents in a 2-node lab, init on one, the installer's first-join script on the other", async (t) => {
	const lab = await withLab(t, { nodes: 2 });
	const agents: ChildProcess[] = [];
	t.teardown(async () => {
		for (const a of agents) {
			if (a.exitCode === null && a.signalCode === null) {
				const gone = new Promise((r) => a.once("exit", r));
				a.kill("SIGKILL");
				await gone;
			}
		}
	});
	const nodeEnv = (n: (typeof lab.nodes)[number]) => ({
		PATH,
		TSSWARM_DATA_ROOT: n.dir,
		TSSWARM_NODE: n.name,
		TSSWARM_CGROUP_PARENT: n.netns,
	});
	const inNode = (n: (typeof lab.nodes)[number], argv: string[], extra: Record<string, string> = {}) => {
		const [cmd, ...args] = netnsArgv(lab.record, n.name, argv);
		return spawnSync(cmd!, args, { encoding: "utf8", env: { ...nodeEnv(n), ...extra }, timeout: 60_000 });
	};
	for (const n of lab.nodes) {
		const [cmd, ...args] = netnsArgv(lab.record, n.name, [bin(), "agent", "--listen-addr", `${n.address}:2377`]);
		const log = openSync(join(n.dir, "agent.log"), "a");
		const a = spawn(cmd!, args, { stdio: ["ignore", log, log], env: nodeEnv(n) });
		closeSync(log);
		agents.push(a);
		await waitFor(`${n.name}'s agent socket`, () => existsSync(socketPath(n.dir)) || a.exitCode !== null, {
			timeoutMs: 30_000,
		});
		t.equal(a.exitCode, null, `${n.name}'s agent runs (see ${n.dir}/agent.log)`);
	}
	const [n1, n2] = lab.nodes as [(typeof lab.nodes)[number], (typeof lab.nodes)[number]];
	const init = inNode(n1, [bin(), "init"]);
	t.equal(init.status, 0, init.stderr);
	const token = /TSWARM-1-[a-z2-7]{25}-[a-z2-7]{32}/.exec(init.stdout)?.[0];
	t.ok(token, "init printed a worker token");

	// The installer's first-join script (what tsswarm.service runs after the agent starts), from
	// an install into a scratch root, with the token it would read from /etc/tsswarm/tsswarm.env.
	const root = tempDir("tsswarm-root-");
	t.teardown(root.remove);
	const inst = spawnSync(
		"sh",
		[join(rel.dir, "install.sh"), "--root", root.path, "--binary", rel.get().binaries.amd64!],
		{ encoding: "utf8", env: { PATH } },
	);
	t.equal(inst.status, 0, inst.stderr);
	const firstJoin = join(root.path, "usr/local/lib/tsswarm/first-join");
	const join1 = inNode(n2, [firstJoin], { TSSWARM_JOIN_TOKEN: token!, TSSWARM_JOIN_ADDR: `${n1.address}:2377` });
	t.equal(join1.status, 0, join1.stderr);
	t.match(join1.stdout, /joined/i);
	const again = inNode(n2, [firstJoin], { TSSWARM_JOIN_TOKEN: token!, TSSWARM_JOIN_ADDR: `${n1.address}:2377` });
	t.equal(again.status, 0, "a second start does not join again");
	t.equal(again.stdout, "");
	await waitFor(
		"n1 to see both nodes alive, n2 a worker",
		() => {
			const ls = inNode(n1, [bin(), "node", "ls", "--format", "json"]);
			const nodes = ls.status === 0 ? (JSON.parse(ls.stdout) as { addr: string; state: string; role: string }[]) : [];
			const roles = nodes.map((n) => `${n.addr}:${n.role}:${n.state}`).sort();
			return roles.join() === `${n1.address}:2377:manager:alive,${n2.address}:2377:worker:alive`;
		},
		{ timeoutMs: 30_000, intervalMs: 250 },
	);
});
