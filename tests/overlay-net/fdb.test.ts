// Per-endpoint FDB and neighbour entries: unicast to a remote task goes to its node only.
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import { Allocator, macFor, OverlayDriver, type RemoteEndpoint } from "../../overlay-net/index.ts";
import { withLab } from "../helpers/lab.ts";

const sumPackets = (nft: string) => [...nft.matchAll(/packets (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);

t.test("three nodes: traffic to a remote task reaches only that task's node", async (t) => {
	const lab = await withLab(t, { nodes: 3 });
	const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
	const drivers = lab.nodes.map(
		(n) => new OverlayDriver({ nodeNetns: n.netns, underlayIp: n.address, prefix: n.netns }),
	);
	const app = ipam.createNetwork({ id: "app", name: "app", internal: true });
	const underlay = lab.nodes.map((n) => n.address);
	for (const d of drivers) {
		await d.createNetwork(app);
		await d.setPeers(app, underlay);
	}
	const tasks: { ns: string; addr: string; node: number }[] = [];
	for (const [i] of lab.nodes.entries()) {
		const ns = `tsl-${lab.name}-t${i + 1}`;
		await run(["ip", "netns", "add", ns]);
		const addr = ipam.allocateAddress("app", `t${i + 1}`);
		await drivers[i]!.attachTask(app, ns, addr);
		tasks.push({ ns, addr, node: i });
	}
	const [t1, t2, t3] = tasks as [(typeof tasks)[0], (typeof tasks)[0], (typeof tasks)[0]];
	const mac = (await run(["ip", "-n", t2.ns, "-o", "link", "show", "eth0"])).stdout;
	t.match(mac, macFor(t2.addr), `a task's MAC comes from its address (${macFor(t2.addr)})`);
	const rx = async (node: number) => {
		const out = (await run(["ip", "-n", drivers[node]!.sandbox(app), "-s", "-o", "link", "show", `vx${app.vni}`]))
			.stdout;
		return Number(/RX:.*?\\\s+(\d+)\s+(\d+)/.exec(out)?.[2]);
	};
	// On n3, count the unicast IPv4 and all ARP frames that arrive from the VXLAN device (IPv6 and
	// IGMP multicast chatter of new interfaces, such as the gateway's IGMP reports, is broadcast
	// traffic and may flood; unicast must not).
	const n3sb = drivers[2]!.sandbox(app);
	await run(["nsenter", `--net=/run/netns/${n3sb}`, "nft", "-f", "-"], {
		input: `table bridge probe {\n chain c {\n type filter hook prerouting priority 0; policy accept;\n iifname "vx${app.vni}" ether type arp counter\n iifname "vx${app.vni}" ether type ip meta pkttype != { broadcast, multicast } counter\n }\n}\n`,
	});
	const v4AtN3 = async () =>
		sumPackets((await run(["nsenter", `--net=/run/netns/${n3sb}`, "nft", "list", "table", "bridge", "probe"])).stdout);
	const pings = async (n: number) =>
		(
			await run(["ip", "netns", "exec", t1.ns, "ping", "-c", String(n), "-i", "0.05", "-W", "2", t2.addr], {
				allowFailure: true,
			})
		).code;
	// Flood entries only (no endpoint list): every unicast to t2 also goes to n3.
	let n3 = await v4AtN3();
	t.equal(await pings(10), 0, "t1 reaches t2 with flood entries only");
	const flooded = (await v4AtN3()) - n3;
	t.ok(flooded >= 10, `without endpoint entries n3 gets the unicast too (${flooded} packets)`);
	// Endpoint entries: the cluster's view of where each task lives.
	const eps: RemoteEndpoint[] = tasks.map((x) => ({ address: x.addr, vtep: lab.nodes[x.node]!.address }));
	for (const d of drivers) await d.setEndpoints(app, eps);
	await run(["ip", "-n", t1.ns, "neigh", "flush", "all"]); // forget what flooding taught
	n3 = await v4AtN3();
	const n2 = await rx(1);
	t.equal(await pings(20), 0, "t1 reaches t2 with endpoint entries");
	t.equal((await v4AtN3()) - n3, 0, "n3 receives nothing: no flooded unicast and no ARP (the bridge answers it)");
	t.ok((await rx(1)) - n2 >= 20, "n2 receives the pings");
	const fdb = (await run(["bridge", "-n", drivers[0]!.sandbox(app), "fdb", "show", "dev", `vx${app.vni}`])).stdout;
	t.match(
		fdb,
		new RegExp(`${macFor(t2.addr)} dst ${lab.nodes[1]!.address} .*self permanent`),
		"VXLAN FDB: MAC dst VTEP",
	);
	t.notMatch(fdb, macFor(t1.addr), "no entry for the local task");
	t.match(fdb, new RegExp(`${macFor(t3.addr)} master br0 static`), "static bridge FDB entry on the VXLAN port");
	const neigh = (await run(["ip", "-n", drivers[0]!.sandbox(app), "neigh", "show", "dev", "br0"])).stdout;
	t.match(neigh, `${t3.addr} lladdr ${macFor(t3.addr)} PERMANENT`, "static ARP entry on the bridge");
	// No flood list at all: still works (ARP is answered locally).
	for (const d of drivers) await d.setPeers(app, []);
	await run(["ip", "-n", t1.ns, "neigh", "flush", "all"]);
	t.equal(await pings(2), 0, "t1 reaches t2 with no flood entries");
	t.equal(
		(await run(["ip", "netns", "exec", t1.ns, "ping", "-c", "1", "-W", "2", t3.addr], { allowFailure: true })).code,
		0,
	);
	// An endpoint that leaves is forgotten everywhere.
	for (const d of drivers)
		await d.setEndpoints(
			app,
			eps.filter((e) => e.address !== t3.addr),
		);
	const after = (await run(["bridge", "-n", drivers[0]!.sandbox(app), "fdb", "show", "dev", `vx${app.vni}`])).stdout;
	t.notMatch(after, macFor(t3.addr), "its FDB entries are removed");
	t.notMatch((await run(["ip", "-n", drivers[0]!.sandbox(app), "neigh", "show", "dev", "br0"])).stdout, `${t3.addr} `);
	await t.rejects(
		drivers[0]!.setEndpoints(app, [{ address: t3.addr, vtep: "198.18.0.300; x" }]),
		/not an IPv4 address/,
	);
});
