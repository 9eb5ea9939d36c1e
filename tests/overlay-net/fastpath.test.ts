// The data-plane settings the driver promises for throughput (bench/overlay): sandbox bridges
// skip br_netfilter, and the node's own VXLAN packets skip conntrack, while the egress rules that
// need conntrack keep it. Restored by reconcile, removed with the last network.
import { existsSync } from "node:fs";
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import { Allocator, OverlayDriver, TUNNEL_TABLE, tunnelRuleset } from "../../overlay-net/index.ts";
import { withLab } from "../helpers/lab.ts";

const inNs = (ns: string, argv: string[]) => ["ip", "netns", "exec", ns, ...argv];
const tables = async (ns: string) => (await run(inNs(ns, ["nft", "list", "tables"]))).stdout;
/** The bridge-nf-call-* values in a namespace, or undefined where br_netfilter is not loaded. */
async function bridgeNf(ns: string): Promise<string | undefined> {
	const r = await run(
		inNs(ns, [
			"sh",
			"-c",
			"cat /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/bridge/bridge-nf-call-arptables",
		]),
		{ allowFailure: true },
	);
	return r.code === 0 ? r.stdout.split("\n").join(" ").trim() : undefined;
}

t.test("tunnelRuleset: notrack for the node's VXLAN port only; bad input refused", async (t) => {
	const r = tunnelRuleset("198.18.0.1", 4789);
	t.match(r, /hook prerouting priority raw;[^}]*ip daddr 198\.18\.0\.1 udp dport 4789 notrack/);
	t.match(r, /hook output priority raw;[^}]*ip saddr 198\.18\.0\.1 udp dport 4789 notrack/);
	t.throws(() => tunnelRuleset("198.18.0.1; flush ruleset", 4789), /not an IPv4 address/);
	t.throws(() => tunnelRuleset("198.18.0.1", 0), /not a port/);
});

t.test("sandbox bridges skip br_netfilter; VXLAN packets are not tracked; reconcile restores both", async (t) => {
	const lab = await withLab(t, { nodes: 2 });
	const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
	const drivers = lab.nodes.map(
		(n) => new OverlayDriver({ nodeNetns: n.netns, underlayIp: n.address, prefix: n.netns }),
	);
	const net = ipam.createNetwork({ id: "F", name: "fast" }); // not internal: the egress table needs conntrack
	for (const d of drivers) {
		await d.createNetwork(net);
		await d.setPeers(
			net,
			lab.nodes.map((n) => n.address),
		);
	}
	const tasks = [];
	for (const [i, d] of drivers.entries()) {
		const ns = `tsl-${lab.name}-f${i}`;
		await run(["ip", "netns", "add", ns]);
		const addr = ipam.allocateAddress(net.id, ns);
		await d.attachTask(net, ns, addr);
		tasks.push({ ns, addr });
	}
	const [a, b] = tasks as [(typeof tasks)[0], (typeof tasks)[0]];
	const ping = await run(inNs(a.ns, ["ping", "-c", "3", "-i", "0.2", "-W", "2", b.addr]), { allowFailure: true });
	t.equal(ping.code, 0, "tasks on two nodes reach each other over VXLAN");

	const brnf = existsSync("/proc/sys/net/bridge");
	for (const [i, d] of drivers.entries()) {
		const node = lab.nodes[i]!.netns;
		if (brnf) t.equal(await bridgeNf(d.sandbox(net)), "0 0", `${d.sandbox(net)}: bridged frames skip netfilter`);
		else t.equal(await bridgeNf(d.sandbox(net)), undefined, "br_netfilter not loaded: nothing to turn off");
		t.match(await tables(node), new RegExp(`table ip ${TUNNEL_TABLE}\\b`), `${node}: the tunnel table`);
		t.match(await tables(node), /table ip tsswarm_egress\b/, `${node}: conntrack is on there (egress rules)`);
		const ct = (await run(inNs(node, ["cat", "/proc/net/nf_conntrack"]), { allowFailure: true })).stdout;
		t.notMatch(ct, /dport=4789/, `${node}: no conntrack entry for VXLAN packets`);
	}

	// A restarted agent puts back what was lost.
	const n2 = lab.nodes[1]!;
	await run(inNs(drivers[1]!.sandbox(net), ["sysctl", "-qew", "net.bridge.bridge-nf-call-iptables=1"]));
	await run(inNs(n2.netns, ["nft", "delete", "table", "ip", TUNNEL_TABLE]));
	const fresh = new OverlayDriver({ nodeNetns: n2.netns, underlayIp: n2.address, prefix: n2.netns });
	await fresh.reconcile([net], () => lab.nodes.map((n) => n.address));
	t.match(await tables(n2.netns), new RegExp(`table ip ${TUNNEL_TABLE}\\b`), "reconcile restores the tunnel table");
	if (brnf) t.equal(await bridgeNf(fresh.sandbox(net)), "0 0", "and the bridge setting");

	// The table goes with the node's last network.
	await drivers[0]!.deleteNetwork(net);
	t.notMatch(await tables(lab.nodes[0]!.netns), new RegExp(TUNNEL_TABLE), "deleteNetwork of the last network drops it");
	const r = await fresh.reconcile([]);
	t.same(r.removed, [fresh.sandbox(net)]);
	t.notMatch(await tables(n2.netns), new RegExp(TUNNEL_TABLE), "reconcile with no network drops it");
});
