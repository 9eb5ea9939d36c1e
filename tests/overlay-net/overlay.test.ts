import { spawn } from "node:child_process";
import { join } from "node:path";
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import {
	Allocator,
	checkEncryptionSupport,
	EGRESS_TABLE,
	InvalidCidrError,
	MESH_TABLE,
	type NetworkAlloc,
	OverlayDriver,
	PoolExhaustedError,
	PortConflictError,
	parseCidr,
	SubnetOverlapError,
} from "../../overlay-net/index.ts";
import { waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";

t.test("IPAM: subnets from pools, explicit subnets validated, VNIs, addresses, ports", async (t) => {
	const a = new Allocator({ pools: ["198.19.0.0/22"], subnetPrefix: 24 });
	const n1 = a.createNetwork({ id: "a", name: "front" });
	t.same([n1.subnet, n1.gateway, n1.vni], ["198.19.0.0/24", "198.19.0.1", 4096]);
	t.equal(a.allocateAddress("a", "task1"), "198.19.0.2");
	t.equal(a.allocateAddress("front", "vip:web"), "198.19.0.3", "by name too");
	a.releaseAddress("a", "198.19.0.2");
	t.equal(a.allocateAddress("a", "task2"), "198.19.0.2", "released addresses are reused");
	const n2 = a.createNetwork({ id: "b", name: "back", subnet: "198.19.8.0/24", gateway: "198.19.8.254" });
	t.equal(n2.vni, 4097);
	t.throws(() => a.createNetwork({ id: "c", name: "clash", subnet: "198.19.8.128/25" }), SubnetOverlapError);
	t.throws(() => a.createNetwork({ id: "c", name: "bad", subnet: "198.19.300.0/24" }), InvalidCidrError);
	t.throws(() => a.createNetwork({ id: "c", name: "bad", subnet: "198.19.1.5/24" }), /host bits are set/);
	t.throws(
		() => a.createNetwork({ id: "c", name: "bad", subnet: "198.19.4.0/24", gateway: "198.19.5.1" }),
		/not a host address/,
	);
	for (const name of ["x1", "x2", "x3"]) a.createNetwork({ id: name, name });
	t.throws(() => a.createNetwork({ id: "x4", name: "x4" }), PoolExhaustedError, "a /22 pool holds four /24s");
	const tiny = new Allocator({ pools: ["198.19.0.0/16"] }).createNetwork({
		id: "t",
		name: "tiny",
		subnet: "198.19.9.0/30",
	});
	t.equal(tiny.gateway, "198.19.9.1");
	a.publishPort(8080, "svc-a");
	t.throws(() => a.publishPort(8080, "svc-b"), PortConflictError);
	t.same(new Allocator(a.toJSON()).networks().length, a.networks().length, "state round-trips");
	t.equal(parseCidr("10.1.0.0/16").text, "10.1.0.0/16");
});

t.test("VXLAN across two lab nodes: tasks reach each other; networks are isolated; reconcile cleans up", async (t) => {
	const lab = await withLab(t, { nodes: 2 });
	const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
	const drivers = lab.nodes.map(
		(n) => new OverlayDriver({ nodeNetns: n.netns, underlayIp: n.address, prefix: n.netns }),
	);
	const peers = lab.nodes.map((n) => n.address);
	const netA = ipam.createNetwork({ id: "A", name: "a" });
	const netB = ipam.createNetwork({ id: "B", name: "b" });
	for (const d of drivers) {
		for (const n of [netA, netB]) {
			await d.createNetwork(n);
			await d.setPeers(n, peers);
		}
	}
	// Task namespaces, named with the lab's prefix so the lab teardown removes them too.
	const task = async (name: string, node: number, net: typeof netA) => {
		const ns = `tsl-${lab.name}-${name}`;
		await run(["ip", "netns", "add", ns]);
		const addr = ipam.allocateAddress(net.id, name);
		await drivers[node]!.attachTask(net, ns, addr);
		return { ns, addr };
	};
	const t1 = await task("t1", 0, netA);
	const t2 = await task("t2", 1, netA);
	const t3 = await task("t3", 1, netB);
	const ping = (from: string, to: string) =>
		run(["ip", "netns", "exec", from, "ping", "-c", "1", "-W", "2", to], { allowFailure: true });
	t.equal((await ping(t1.ns, t2.addr)).code, 0, `t1 (${t1.addr}, n1) reaches t2 (${t2.addr}, n2) over VXLAN`);
	t.equal((await ping(t2.ns, t1.addr)).code, 0, "and back");
	t.not((await ping(t1.ns, t3.addr)).code, 0, `t1 on network a cannot reach t3 (${t3.addr}) on network b`);
	const mtu = await run(["ip", "-n", drivers[0]!.sandbox(netA), "-o", "link", "show", `vx${netA.vni}`]);
	t.match(mtu.stdout, /mtu 1450/, "VXLAN MTU = underlay - 50");
	const info = await run(["ip", "-n", drivers[0]!.sandbox(netA), "-d", "-o", "link", "show", `vx${netA.vni}`]);
	t.match(info.stdout, new RegExp(`vxlan id ${netA.vni} .*dstport 4789.*nolearning`), "VNI, port 4789, learning off");
	// Dropping the peer cuts the path; putting it back restores it.
	await drivers[0]!.setPeers(netA, []);
	t.not((await ping(t1.ns, t2.addr)).code, 0, "no peer, no path");
	await drivers[0]!.setPeers(netA, peers);
	t.equal((await ping(t1.ns, t2.addr)).code, 0, "peer restored");
	// A restarted agent reconciles: network b is gone from the desired state, a stays.
	const fresh = new OverlayDriver({
		nodeNetns: lab.nodes[1]!.netns,
		underlayIp: lab.nodes[1]!.address,
		prefix: lab.nodes[1]!.netns,
	});
	const r = await fresh.reconcile([netA], () => peers);
	t.same(r.removed, [fresh.sandbox(netB)]);
	t.same(r.created, []);
	const left = (await run(["ip", "netns", "list"])).stdout;
	t.notMatch(left, new RegExp(fresh.sandbox(netB)), "the stale sandbox is gone");
	t.equal((await ping(t1.ns, t2.addr)).code, 0, "network a still works after reconcile");
});

t.test("encrypted networks: a clear error where neither WireGuard nor IPsec AEAD is available", async (t) => {
	const r = await checkEncryptionSupport().then(
		() => "supported",
		(e: Error & { code?: string }) => e.code,
	);
	const wg = await run(["sh", "-c", "test -d /sys/module/wireguard && echo yes || echo no"]);
	t.equal(r, wg.stdout.trim() === "yes" ? "supported" : "ERR_ENCRYPTION_UNSUPPORTED");
});

t.test("an agent killed with SIGKILL leaks nothing: reconcile removes its links, rules and sandboxes", async (t) => {
	const lab = await withLab(t, { nodes: 1 });
	const node = lab.nodes[0]!;
	const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
	const app = ipam.createNetwork({ id: "app", name: "app" });
	ipam.createNetwork({ id: "ingress", name: "ingress", ingress: true });
	const child = spawn(
		process.execPath,
		[join(import.meta.dirname, "agent-child.ts"), node.netns, node.address, JSON.stringify(ipam.toJSON())],
		{ stdio: ["ignore", "pipe", "inherit"] },
	);
	t.teardown(() => void child.kill("SIGKILL"));
	await waitFor(
		"the agent to program its state",
		() => new Promise<true>((r) => child.stdout!.once("data", () => r(true))),
		{
			timeoutMs: 20_000,
		},
	);
	const snapshot = async () => ({
		sandboxes: (await run(["ip", "netns", "list"])).stdout.split("\n").filter((l) => l.startsWith(`${node.netns}-ov`))
			.length,
		links: (await lab.exec(node.name, ["ip", "-o", "link", "show"])).stdout
			.split("\n")
			.filter((l) => /ovi|vx\d/.test(l)).length,
		mesh: (await lab.exec(node.name, ["nft", "list", "tables"])).stdout.includes(MESH_TABLE),
		egress: (await lab.exec(node.name, ["nft", "list", "tables"])).stdout.includes(EGRESS_TABLE),
		ovh: (await lab.exec(node.name, ["ip", "-o", "link", "show"])).stdout.split("\n").filter((l) => /ovh\d/.test(l))
			.length,
		forwarding: (await lab.exec(node.name, ["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout.trim(),
	});
	t.same(
		await snapshot(),
		{ sandboxes: 2, links: 1, mesh: true, egress: true, ovh: 1, forwarding: "1" },
		"state programmed by the agent",
	);
	child.kill("SIGKILL");
	await new Promise((r) => child.once("exit", r));
	const fresh = new OverlayDriver({ nodeNetns: node.netns, underlayIp: node.address, prefix: node.netns });
	// Restarted with only `app` desired and nothing published: everything else goes.
	const r = await fresh.reconcile([app]);
	t.equal(r.removed.length, 1, "the ingress sandbox is removed");
	const after = await snapshot();
	t.same(
		{ ...after, forwarding: undefined },
		{ sandboxes: 1, links: 0, mesh: false, egress: true, ovh: 1, forwarding: undefined },
	);
	// And with nothing desired, nothing of ours is left in the kernel.
	await fresh.reconcile([]);
	t.same(
		{ ...(await snapshot()), forwarding: undefined },
		{ sandboxes: 0, links: 0, mesh: false, egress: false, ovh: 0, forwarding: undefined },
	);
	// A second reconcile with the full state recreates it (idempotent, no "exists" errors).
	await fresh.reconcile([app]);
	await fresh.reconcile([app]);
	t.equal((await snapshot()).sandboxes, 1);
});

t.test(
	"a way out: a network reaches past its node (masqueraded); --internal does not; networks stay apart",
	async (t) => {
		const lab = await withLab(t, { nodes: 1, registry: true });
		const node = lab.nodes[0]!;
		const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
		const d = new OverlayDriver({ nodeNetns: node.netns, underlayIp: node.address, prefix: node.netns });
		const open = ipam.createNetwork({ id: "open", name: "open" });
		const other = ipam.createNetwork({ id: "other", name: "other" });
		const closed = ipam.createNetwork({ id: "closed", name: "closed", internal: true });
		const task = async (name: string, net: NetworkAlloc) => {
			const ns = `tsl-${lab.name}-${name}`;
			await run(["ip", "netns", "add", ns]);
			const addr = ipam.allocateAddress(net.id, name);
			await d.attachTask(net, ns, addr);
			return { ns, addr };
		};
		for (const n of [open, other, closed]) await d.createNetwork(n);
		const a = await task("a", open);
		const b = await task("b", other);
		const c = await task("c", closed);
		const registry = `http://${lab.record.registry!.address}:${lab.record.registry!.port}/v2/`;
		const fetch = (ns: string) =>
			run(["nsenter", `--net=/run/netns/${ns}`, "timeout", "3", "busybox", "wget", "-q", "-O-", registry], {
				allowFailure: true,
			});
		t.equal((await fetch(a.ns)).code, 0, `a task on a network reaches the lab registry (${registry}) through its node`);
		t.not((await fetch(c.ns)).code, 0, "a task on an --internal network has no way out");
		const ping = (from: string, to: string) =>
			run(["ip", "netns", "exec", from, "ping", "-c", "1", "-W", "1", to], { allowFailure: true });
		t.not((await ping(a.ns, b.addr)).code, 0, "networks stay apart through the node too");
		t.not((await ping(b.ns, a.addr)).code, 0, "both ways");
	},
);
