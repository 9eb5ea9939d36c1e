// install.sh into scratch roots (--root): what it writes and lists, --uninstall and --purge, the
// checksum check, --base-url downloads, the host checks, and `systemd-analyze verify` of the unit.
// The "binary" is a small script that answers --version like the real one (tests/release/binary.test.ts
// installs the real one).
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import t from "tap";
import { tempDir } from "../helpers/index.ts";
import { pathWithout } from "./fixtures.ts";

const installer = new URL("../../install.sh", import.meta.url).pathname;
const sha = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");

/** A release dir: a fake binary for this host and its SHA256SUMS. */
function fakeRelease(version = "9.8.7") {
	const dir = tempDir("tsswarm-fake-rel-");
	t.teardown(dir.remove);
	const name = `tsswarm-${version}-linux-${process.arch === "arm64" ? "arm64" : "amd64"}`;
	const body = `#!/bin/sh\n[ "$1" = --version ] && echo ${version}\n`;
	writeFileSync(join(dir.path, name), body, { mode: 0o755 });
	writeFileSync(
		join(dir.path, "SHA256SUMS"),
		`${sha("other")}  tsswarm-${version}-linux-riscv64\n${sha(body)}  ${name}\n`,
	);
	return { dir: dir.path, binary: join(dir.path, name), body, name };
}

function scratch() {
	const d = tempDir("tsswarm-root-");
	t.teardown(d.remove);
	return d.path;
}

const install = (args: string[], env: NodeJS.ProcessEnv = {}) =>
	spawnSync("sh", [installer, ...args], { encoding: "utf8", env: { PATH: process.env.PATH, ...env }, timeout: 60_000 });

/** install.sh without blocking this process (which serves its downloads in one test). */
function installAsync(args: string[]): Promise<{ status: number | null; stderr: string }> {
	return new Promise((resolve) => {
		const p = spawn("sh", [installer, ...args], { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 });
		let stderr = "";
		p.stderr.on("data", (d: Buffer) => {
			stderr += d;
		});
		p.on("close", (status) => resolve({ status, stderr }));
	});
}

/** Every path under root, relative, sorted (directories end in /). */
function tree(root: string, rel = ""): string[] {
	return readdirSync(join(root, rel), { withFileTypes: true })
		.flatMap((e) => {
			const p = rel ? `${rel}/${e.name}` : e.name;
			return e.isDirectory() ? [`${p}/`, ...tree(root, p)] : [p];
		})
		.sort();
}

t.test("an install into a scratch root writes the binary, the unit, the env file and lists them", async (t) => {
	const rel = fakeRelease();
	const root = scratch();
	const r = install(["--root", root, "--binary", rel.binary], {
		TSSWARM_JOIN_TOKEN: "TSWARM-1-aaaa-bbbb",
		TSSWARM_JOIN_ADDR: "198.18.0.1:2377",
		TSSWARM_AGENT_ARGS: "--label zone=attic",
	});
	t.equal(r.status, 0, r.stderr);
	t.match(r.stderr, /verified tsswarm-9\.8\.7-linux-\w+ \(9\.8\.7\)/);
	t.same(tree(root), [
		"etc/",
		"etc/systemd/",
		"etc/systemd/system/",
		"etc/systemd/system/tsswarm.service",
		"etc/tsswarm/",
		"etc/tsswarm/installed-files",
		"etc/tsswarm/tsswarm.env",
		"usr/",
		"usr/local/",
		"usr/local/bin/",
		"usr/local/bin/tsswarm",
		"usr/local/lib/",
		"usr/local/lib/tsswarm/",
		"usr/local/lib/tsswarm/first-join",
	]);
	const listed = readFileSync(join(root, "etc/tsswarm/installed-files"), "utf8").trim().split("\n");
	for (const p of tree(root)) {
		const abs = `/${p.replace(/\/$/, "")}`;
		t.ok(listed.includes(`${p.endsWith("/") ? "d" : "f"} ${abs}`), `the manifest lists ${abs}`);
	}
	t.equal(readFileSync(join(root, "usr/local/bin/tsswarm"), "utf8"), rel.body, "the binary is the verified file");
	t.equal(statSync(join(root, "usr/local/bin/tsswarm")).mode & 0o777, 0o755);
	const unit = readFileSync(join(root, "etc/systemd/system/tsswarm.service"), "utf8");
	for (const line of [
		"Delegate=yes",
		"KillMode=process",
		"Restart=always",
		"EnvironmentFile=-/etc/tsswarm/tsswarm.env",
		"ExecStart=/usr/local/bin/tsswarm agent --data-root /var/lib/tsswarm $TSSWARM_AGENT_ARGS",
		"ExecStartPost=/usr/local/lib/tsswarm/first-join",
		"WantedBy=multi-user.target",
	])
		t.ok(unit.split("\n").includes(line), line);
	const envFile = join(root, "etc/tsswarm/tsswarm.env");
	t.equal(statSync(envFile).mode & 0o777, 0o600, "the env file (it holds the token) is root's only");
	t.match(readFileSync(envFile, "utf8"), /^TSSWARM_JOIN_TOKEN=TSWARM-1-aaaa-bbbb$/m);
	t.match(readFileSync(envFile, "utf8"), /^TSSWARM_JOIN_ADDR=198\.18\.0\.1:2377$/m);
	t.match(readFileSync(envFile, "utf8"), /^TSSWARM_AGENT_ARGS="--label zone=attic"$/m);
	t.equal(statSync(join(root, "etc")).mode & 0o777, 0o755, "directories it makes are 0755");
	const sh = spawnSync("sh", ["-n", join(root, "usr/local/lib/tsswarm/first-join")]);
	t.equal(sh.status, 0, "the first-join script parses");
});

t.test("--uninstall removes what it wrote and keeps the data dir; --purge removes that too", async (t) => {
	const rel = fakeRelease();
	const root = scratch();
	// Something that was there before: never removed.
	mkdirSync(join(root, "etc"));
	writeFileSync(join(root, "etc/hostname"), "pi\n");
	t.equal(install(["--root", root, "--binary", rel.binary]).status, 0);
	t.ok(existsSync(join(root, "usr/local/bin/tsswarm")), "installed (positive control)");
	mkdirSync(join(root, "var/lib/tsswarm"), { recursive: true });
	writeFileSync(join(root, "var/lib/tsswarm/state"), "the node's data");

	// Installing again (an upgrade) keeps the manifest complete.
	t.equal(install(["--root", root, "--binary", rel.binary]).status, 0, "reinstall");

	const u = install(["--root", root, "--uninstall"]);
	t.equal(u.status, 0, u.stderr);
	t.match(u.stderr, /kept the data dir/);
	t.same(tree(root), ["etc/", "etc/hostname", "var/", "var/lib/", "var/lib/tsswarm/", "var/lib/tsswarm/state"]);

	const again = install(["--root", root, "--uninstall"]);
	t.equal(again.status, 1, "nothing left to uninstall");
	t.match(again.stderr, /nothing to uninstall/);

	t.equal(install(["--root", root, "--binary", rel.binary]).status, 0);
	const p = install(["--root", root, "--uninstall", "--purge"]);
	t.equal(p.status, 0, p.stderr);
	t.same(tree(root), ["etc/", "etc/hostname", "var/", "var/lib/"], "the data dir went with --purge");
});

t.test("a bad checksum is refused and nothing is written", async (t) => {
	const rel = fakeRelease();
	const root = scratch();
	writeFileSync(rel.binary, `${rel.body}# tampered\n`, { mode: 0o755 });
	const r = install(["--root", root, "--binary", rel.binary]);
	t.equal(r.status, 1);
	t.match(
		r.stderr,
		/checksum mismatch for tsswarm-9\.8\.7-linux-\w+: SHA256SUMS says [0-9a-f]{64}, the file is [0-9a-f]{64}; not installing/,
	);
	t.same(tree(root), [], "nothing written");

	const missing = install(["--root", root, "--binary", rel.binary, "--sums", join(rel.dir, "nosuch")]);
	t.equal(missing.status, 1);
	t.match(missing.stderr, /no SHA256SUMS|nosuch/);

	// Positive control: the same file with its true hash installs.
	writeFileSync(join(rel.dir, "SHA256SUMS"), `${sha(readFileSync(rel.binary))}  ${rel.name}\n`);
	const ok = install(["--root", root, "--binary", rel.binary]);
	t.equal(ok.status, 0, ok.stderr);
});

t.test("--base-url downloads SHA256SUMS and this host's binary, and checks it", async (t) => {
	const rel = fakeRelease("1.2.3");
	const served: string[] = [];
	const server = createServer((req, res) => {
		served.push(req.url ?? "");
		const f = join(rel.dir, (req.url ?? "").replace(/^\/rel\//, ""));
		if (!req.url?.startsWith("/rel/") || !existsSync(f)) return res.writeHead(404).end();
		res.end(readFileSync(f));
	});
	await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
	t.teardown(() => new Promise<void>((r) => server.close(() => r())));
	const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rel/`;
	const root = scratch();
	const r = await installAsync(["--root", root, "--base-url", url]);
	t.equal(r.status, 0, r.stderr);
	t.same(served, ["/rel/SHA256SUMS", `/rel/${rel.name}`], "the sums, then the one binary for this arch");
	t.equal(readFileSync(join(root, "usr/local/bin/tsswarm"), "utf8"), rel.body);

	writeFileSync(rel.binary, "#!/bin/sh\necho evil\n");
	const bad = await installAsync(["--root", scratch(), "--base-url", url]);
	t.equal(bad.status, 1, "a tampered download is refused");
	t.match(bad.stderr, /checksum mismatch/);
});

t.test("the host checks name what is missing; --skip-checks installs anyway", async (t) => {
	const rel = fakeRelease();
	const noNft = pathWithout(["nft", "runc"]);
	const r = install(["--root", scratch(), "--binary", rel.binary], { PATH: noNft });
	t.equal(r.status, 1);
	t.match(
		r.stderr,
		/lacks what the agent needs:\n {2}- runc \(apt-get install runc\)\n {2}- nft \(apt-get install nftables\)/,
	);
	t.notMatch(r.stderr, /iproute2/, "ip is there, so not named");

	// A fake /proc and /sys: cgroup v2 without the memory controller (Raspberry Pi OS's default).
	const k = tempDir("tsswarm-kernel-");
	t.teardown(k.remove);
	mkdirSync(join(k.path, "proc/self/ns"), { recursive: true });
	for (const ns of ["mnt", "net", "pid", "ipc", "uts"]) writeFileSync(join(k.path, "proc/self/ns", ns), "");
	writeFileSync(join(k.path, "proc/filesystems"), "nodev\toverlay\n");
	mkdirSync(join(k.path, "sys/fs/cgroup"), { recursive: true });
	mkdirSync(join(k.path, "sys/module/vxlan"), { recursive: true });
	writeFileSync(join(k.path, "sys/fs/cgroup/cgroup.controllers"), "cpuset cpu io pids\n");
	const root = scratch();
	const c = install(["--root", root, "--binary", rel.binary], { TSSWARM_CHECK_ROOT: k.path });
	t.equal(c.status, 1);
	t.match(c.stderr, /- kernel: cgroup v2 controller memory \(Raspberry Pi: add cgroup_enable=memory/);
	t.notMatch(c.stderr, /controller cpu|controller pids|namespaces|overlayfs|VXLAN/, "only what is missing is named");
	t.same(tree(root), [], "nothing written");

	writeFileSync(join(k.path, "sys/fs/cgroup/cgroup.controllers"), "cpuset cpu io memory pids\n");
	const fixed = install(["--root", scratch(), "--binary", rel.binary], { TSSWARM_CHECK_ROOT: k.path });
	t.equal(fixed.status, 0, `with the memory controller it installs (positive control): ${fixed.stderr}`);

	const skip = install(["--root", root, "--binary", rel.binary, "--skip-checks"], { PATH: noNft });
	t.equal(skip.status, 0, skip.stderr);
	t.match(skip.stderr, /warning: this host lacks what the agent needs:\n {2}- runc/);
	t.ok(existsSync(join(root, "usr/local/bin/tsswarm")));
});

t.test("bad arguments are named", async (t) => {
	const r = install(["--root", scratch(), "--frobnicate"]);
	t.equal(r.status, 1);
	t.match(r.stderr, /unknown argument: --frobnicate/);
	const none = install(["--root", scratch()]);
	t.equal(none.status, 1);
	t.match(none.stderr, /give --binary FILE or --base-url URL/);
	const half = install(["--root", scratch(), "--binary", "/nonexistent"], { TSSWARM_JOIN_TOKEN: "x" });
	t.equal(half.status, 1);
	t.match(half.stderr, /TSSWARM_JOIN_TOKEN is set but TSSWARM_JOIN_ADDR/);
});

t.test("systemd-analyze verify finds the unit clean, and reports a broken copy", async (t) => {
	const rel = fakeRelease();
	const root = scratch();
	t.equal(install(["--root", root, "--binary", rel.binary]).status, 0);
	// verify --root resolves everything inside root: the targets the unit's default dependencies
	// name (sysinit.target, basic.target, ...) come from this host's systemd, copied in.
	cpSync("/usr/lib/systemd/system", join(root, "usr/lib/systemd/system"), { recursive: true });
	const unitFile = join(root, "etc/systemd/system/tsswarm.service");
	const unit = readFileSync(unitFile, "utf8");
	const verify = () =>
		spawnSync("systemd-analyze", ["verify", `--root=${root}`, "tsswarm.service"], {
			encoding: "utf8",
			env: { PATH: process.env.PATH, SYSTEMD_LOG_COLOR: "0" },
			timeout: 60_000,
		});
	const clean = verify();
	t.equal(clean.status, 0, clean.stderr);
	t.equal(`${clean.stdout}${clean.stderr}`, "", "nothing to report");

	// Positive controls. systemd ignores a setting it cannot parse (a warning, exit 0), which would
	// silently drop the KillMode/Delegate the containers depend on: the output must name it.
	for (const [what, from, to, said] of [
		["a misspelt key", "Delegate=yes", "Delegat=yes", /:\d+: Unknown key 'Delegat' in section \[Service\]/],
		["a bad value", "KillMode=process", "KillMode=proces", /Failed to parse kill mode specification.*proces/],
		["a bad section", "[Service]", "[Servic]", /Unknown section 'Servic'/],
	] as const) {
		t.ok(unit.includes(from), `the unit has ${from}`);
		writeFileSync(unitFile, unit.replace(from, to));
		const r = verify();
		t.match(`${r.stdout}${r.stderr}`, said, `${what} is reported`);
	}
	writeFileSync(unitFile, unit);
	t.equal(verify().status, 0, "restored, clean again");
	// The binary the unit names must exist and be executable inside the root.
	const bin = join(root, "usr/local/bin/tsswarm");
	renameSync(bin, `${bin}.away`);
	const noBin = verify();
	t.not(noBin.status, 0, "without the binary, verify fails");
	t.match(noBin.stderr, /Command \/usr\/local\/bin\/tsswarm is not executable/);
});
