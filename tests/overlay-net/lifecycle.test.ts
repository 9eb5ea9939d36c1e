// Removal: a task, a service's VIP and a network each take every kernel object they made with them.
import { join } from "node:path";
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import { Allocator, EGRESS_TABLE, LB_TABLE, NetworkInUseError, OverlayDriver } from "../../overlay-net/index.ts";
import { withLab } from "../helpers/lab.ts";

t.test("removing a task, a VIP and a network removes their links, addresses, rules and sandbox", async (t) => {
	const lab = await withLab(t, { nodes: 1 });
	const node = lab.nodes[0]!;
	const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
	const d = new OverlayDriver({ nodeNetns: node.netns, underlayIp: node.address, prefix: node.netns });
	t.teardown(() => d.close());
	const app = ipam.createNetwork({ id: "app", name: "app" });
	await d.createNetwork(app);
	const big = Array.from({ length: 40 }, (_, i) => `198.19.200.${i + 1}`);
	await d.serveDns(app, (name) => (name === "big" ? { tasks: big } : undefined), []);
	const sb = d.sandbox(app);
	const task = async (name: string) => {
		const ns = `tsl-${lab.name}-${name}`;
		await run(["ip", "netns", "add", ns]);
		const addr = ipam.allocateAddress("app", name);
		await d.attachTask(app, ns, addr);
		return { ns, addr };
	};
	const a = await task("a");
	const b = await task("b");
	const vip = ipam.allocateAddress("app", "vip:web");
	await d.setVips(app, [{ vip, backends: [a.addr, b.addr] }]);
	const sbLinks = async () =>
		(await run(["ip", "-n", sb, "-o", "link", "show"])).stdout.split("\n").filter((l) => /: ve/.test(l)).length;
	const taskState = async (ns: string) => ({
		links: (await run(["ip", "-n", ns, "-o", "link", "show"])).stdout.split("\n").filter((l) => /^\d+: (?!lo:)/.test(l))
			.length,
		addrs: (await run(["ip", "-n", ns, "-o", "-4", "addr", "show"])).stdout
			.split("\n")
			.filter((l) => /198\.19\./.test(l)).length,
		lb: (await run(["nsenter", `--net=/run/netns/${ns}`, "nft", "list", "tables"])).stdout.includes(LB_TABLE),
	});
	t.equal(await sbLinks(), 2, "two task veths in the sandbox");
	// The network's resolver answers over TCP too, inside the sandbox (what a client does after TC).
	const tcp = await run([
		"nsenter",
		`--net=/run/netns/${a.ns}`,
		process.execPath,
		join(import.meta.dirname, "dns-tcp-child.ts"),
		app.gateway,
		"tasks.big",
	]);
	t.equal((JSON.parse(tcp.stdout) as { addresses: string[] }).addresses.length, 40, "a 40-record answer over TCP");
	t.same(await taskState(b.ns), { links: 1, addrs: 1, lb: true });

	// A task goes: its veth (both ends), address and VIP rules; the allocation is freed.
	await d.detachTask(app, b.ns);
	ipam.releaseAddress("app", b.addr);
	t.equal(await sbLinks(), 1, "b's veth is gone from the sandbox");
	t.same(await taskState(b.ns), { links: 0, addrs: 0, lb: false }, "and from b's namespace, with its VIP rules");
	t.notOk(Object.values(app.addresses).includes("b"), "b's address is free");
	await d.detachTask(app, b.ns);
	t.pass("detaching twice is fine");

	// A service goes: its VIP's rules leave every task.
	t.match((await run(["nsenter", `--net=/run/netns/${a.ns}`, "nft", "list", "table", "ip", LB_TABLE])).stdout, vip);
	await d.setVips(app, []);
	ipam.releaseAddress("app", vip);
	t.same(await taskState(a.ns), { links: 1, addrs: 1, lb: false }, "no VIP left: no rule table left in a");

	// The network goes: sandbox, egress veth and route, DNS, egress rules; the allocator refuses while a is on it.
	t.throws(() => ipam.removeNetwork("app"), NetworkInUseError);
	await d.deleteNetwork(app);
	ipam.releaseAddress("app", a.addr);
	ipam.removeNetwork("app");
	t.notMatch((await run(["ip", "netns", "list"])).stdout, sb, "the sandbox is gone");
	t.same(await taskState(a.ns), { links: 0, addrs: 0, lb: false }, "a has nothing of the network left");
	const nodeLinks = (await lab.exec(node.name, ["ip", "-o", "link", "show"])).stdout;
	t.notMatch(nodeLinks, /ovh|ovi|vx\d/, "no egress or VXLAN device left on the node");
	t.notMatch((await lab.exec(node.name, ["ip", "route"])).stdout, app.subnet, "nor the route to the network");
	t.notMatch((await lab.exec(node.name, ["nft", "list", "tables"])).stdout, EGRESS_TABLE, "nor the egress rules");
	t.same(ipam.networks(), [], "the allocation is free");
	const again = ipam.createNetwork({ id: "app2", name: "app" });
	await d.createNetwork(again);
	t.pass("the name, subnet and VNI can be used again at once");
});

t.test("egress links get distinct slots even when VNIs are 32768 apart (after the VNI counter wraps)", async (t) => {
	const lab = await withLab(t, { nodes: 1 });
	const node = lab.nodes[0]!;
	const d = new OverlayDriver({ nodeNetns: node.netns, underlayIp: node.address, prefix: node.netns });
	const a = new Allocator({ pools: ["198.19.0.0/16"], nextVni: 4096 }).createNetwork({ id: "a", name: "a" });
	const b = { ...a, id: "b", name: "b", vni: 4096 + 32_768, subnet: "198.19.9.0/24", gateway: "198.19.9.1" };
	await d.createNetwork(a);
	await d.createNetwork(b);
	const addrs = (await lab.exec(node.name, ["ip", "-o", "-4", "addr", "show"])).stdout;
	const slots = [...addrs.matchAll(/ovh\d+\s+inet (169\.254\.\d+\.\d+)\/31/g)].map((m) => m[1]);
	t.equal(new Set(slots).size, 2, `two egress links, two /31s (${slots.join(", ")})`);
	for (const [i, n] of [a, b].entries()) {
		const ns = `tsl-${lab.name}-e${i}`;
		await run(["ip", "netns", "add", ns]);
		await d.attachTask(n, ns, i === 0 ? "198.19.0.2" : "198.19.9.2");
		const ping = await run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", node.address], {
			allowFailure: true,
		});
		t.equal(ping.code, 0, `a task on ${n.name} (VNI ${n.vni}) gets out through its own egress link`);
	}
});
