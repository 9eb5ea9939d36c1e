// ensurePeers: a bench's peer (etcd, serf, dockerd) is apt-installed only when its binary is missing,
// with apt-get update first, once for all; failures are named. apt itself is faked here.
import { spawnSync } from "node:child_process";
import t from "tap";
import { ensurePeers, PeerInstallError, type PeerRunner } from "../../scripts/peers.ts";

/** A runner where `have` are the binaries on PATH; apt-get install adds what `provides` says. */
function fakeRunner(have: string[], provides: Record<string, string[]>, opts: { installFails?: boolean } = {}) {
	const onPath = new Set(have);
	const calls: string[][] = [];
	const r: PeerRunner = {
		run(argv) {
			calls.push(argv);
			if (argv[0] === "sh") return { status: onPath.has(argv[4]!) ? 0 : 1, stderr: "" };
			if (argv[0] === "test") return { status: onPath.has(argv[2]!) ? 0 : 1, stderr: "" };
			if (argv[0] === "apt-get" && argv.includes("install")) {
				if (opts.installFails) return { status: 100, stderr: "E: Unable to locate package etcd-server" };
				for (const pkg of argv.slice(argv.indexOf("install") + 1)) for (const b of provides[pkg] ?? []) onPath.add(b);
			}
			return { status: 0, stderr: "" };
		},
		log() {},
	};
	const apt = () => calls.filter((c) => c[0] === "apt-get" || c[0] === "systemctl").map((c) => c.join(" "));
	return { r, apt };
}

t.test("a peer already on PATH: no apt call at all", async (t) => {
	const f = fakeRunner(["etcd"], {});
	t.same(ensurePeers([{ bin: "etcd", pkg: "etcd-server" }], f.r), []);
	t.same(f.apt(), []);
});

t.test("missing peers: apt-get update, then one install of their packages, units stopped", async (t) => {
	const f = fakeRunner(["systemctl"], { "docker.io": ["dockerd", "docker"], serf: ["serf"] });
	const got = ensurePeers(
		[
			{ bin: "dockerd", pkg: "docker.io", disableUnits: ["docker.service"] },
			{ bin: "serf", pkg: "serf" },
		],
		f.r,
	);
	t.same(got, ["docker.io", "serf"]);
	const apt = f.apt();
	t.equal(apt.length, 3, apt.join("\n"));
	t.match(apt[0], /^apt-get .*update$/);
	t.match(apt[1], /^apt-get .*-y .*install docker\.io serf$/);
	t.equal(apt[2], "systemctl disable --now docker.service");
	// Idempotent: the second run finds both and calls apt no more.
	t.same(ensurePeers([{ bin: "dockerd", pkg: "docker.io" }], f.r), []);
	t.equal(f.apt().length, 3);
});

t.test("a failed install, or a package without the binary, is a named error", async (t) => {
	const failing = fakeRunner([], {}, { installFails: true });
	t.throws(() => ensurePeers([{ bin: "etcd", pkg: "etcd-server" }], failing.r), {
		name: "PeerInstallError",
		code: PeerInstallError.code,
		message: /could not install the peer etcd \(apt-get install etcd-server\): E: Unable to locate package/,
	});
	const empty = fakeRunner([], { serf: [] });
	t.throws(() => ensurePeers([{ bin: "serf", pkg: "serf" }], empty.r), {
		code: "PEER_INSTALL_FAILED",
		message: /the package installed but serf is still not found/,
	});
});

t.test("the real PATH check: sh is found, a made-up name is not (so it would be installed)", async (t) => {
	t.same(ensurePeers([{ bin: "sh", pkg: "dash" }]), []);
	t.same(ensurePeers([{ bin: "/bin/sh", pkg: "dash" }]), []);
	const calls: string[][] = [];
	const logOnly: PeerRunner = {
		run(argv) {
			calls.push(argv);
			// The real check, the apt calls only recorded.
			if (argv[0] === "apt-get" || argv[0] === "systemctl") return { status: 100, stderr: "not here" };
			const r = spawnSync(argv[0]!, argv.slice(1));
			return { status: r.status, stderr: "" };
		},
		log() {},
	};
	t.throws(() => ensurePeers([{ bin: "tsswarm-no-such-peer-xyz", pkg: "nope" }], logOnly), {
		code: "PEER_INSTALL_FAILED",
	});
	t.ok(calls.some((c) => c[0] === "apt-get" && c.includes("install") && c.includes("nope")));
});
