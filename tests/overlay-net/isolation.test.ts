// Isolation through the node with an ingress network present, and tasks on several networks.
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import { Allocator, type NetworkAlloc, OverlayDriver } from "../../overlay-net/index.ts";
import { type Lab, withLab } from "../helpers/lab.ts";
import { serveHttp, waitForPage } from "./http.ts";

const ping = (from: string, to: string) =>
	run(["ip", "netns", "exec", from, "ping", "-c", "1", "-W", "1", to], { allowFailure: true });

function setup(lab: Lab) {
	const node = lab.nodes[0]!;
	const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
	const d = new OverlayDriver({ nodeNetns: node.netns, underlayIp: node.address, prefix: node.netns });
	const task = async (name: string, nets: NetworkAlloc[]) => {
		const ns = `tsl-${lab.name}-${name}`;
		await run(["ip", "netns", "add", ns]);
		const addrs: string[] = [];
		for (const [k, n] of nets.entries()) {
			addrs.push(ipam.allocateAddress(n.id, name));
			await d.attachTask(n, ns, addrs[k]!, `eth${k}`);
		}
		return { ns, addrs };
	};
	return { node, ipam, d, task };
}

t.test(
	"tasks on different networks cannot reach each other, ingress included; published ports still answer",
	async (t) => {
		const lab = await withLab(t, { nodes: 2 });
		const { node, ipam, d, task } = setup(lab);
		const open = ipam.createNetwork({ id: "open", name: "open" });
		const web = ipam.createNetwork({ id: "web", name: "web" });
		const ingress = ipam.createNetwork({ id: "ingress", name: "ingress", ingress: true });
		for (const n of [open, web, ingress]) await d.createNetwork(n);
		await d.attachNode(ingress, ipam.allocateAddress("ingress", "node:1"));
		const a = await task("a", [open]);
		const x = await task("x", [web, ingress]); // a published service: its own network + ingress
		const [xWeb, xIngress] = x.addrs as [string, string];
		t.not(
			(await ping(a.ns, xIngress)).code,
			0,
			`a (open) cannot reach x's ingress address ${xIngress} through the node`,
		);
		t.not((await ping(a.ns, xWeb)).code, 0, `nor x's address ${xWeb} on network web`);
		t.not((await ping(x.ns, a.addrs[0]!)).code, 0, "nor the other way");
		t.equal((await ping(x.ns, xIngress)).code, 0, "x itself is up (the negative results mean something)");
		// Another host that routes the network's subnet at this node cannot open connections into it.
		const n2 = lab.nodes[1]!;
		await lab.exec(n2.name, ["ip", "route", "add", open.subnet, "via", node.address]);
		t.not((await ping(n2.netns, a.addrs[0]!)).code, 0, "the underlay cannot reach into a network through its node");
		t.equal((await ping(a.ns, n2.address)).code, 0, "while a still gets out to it (masqueraded)");
		// Publishing is the one way in: x's port 80 on the node's port 8080 answers a.
		serveHttp(t, x.ns, xIngress, "x here\n");
		await d.publish([{ protocol: "tcp", publishedPort: 8080, targetPort: 80, backends: [xIngress] }], ingress);
		const page = await waitForPage("the published port to answer a", a.ns, `http://${node.address}:8080/`);
		t.match(page, "x here", "a reaches x only through the published port on its node");
		t.not((await ping(a.ns, xIngress)).code, 0, "and still not directly");
	},
);

t.test("a task on two networks and ingress: one default route, via the first network with a way out", async (t) => {
	const lab = await withLab(t, { nodes: 1 });
	const { ipam, d, task } = setup(lab);
	const front = ipam.createNetwork({ id: "front", name: "front" });
	const back = ipam.createNetwork({ id: "back", name: "back" });
	const ingress = ipam.createNetwork({ id: "ingress", name: "ingress", ingress: true });
	for (const n of [front, back, ingress]) await d.createNetwork(n);
	const m = await task("m", [front, back, ingress]);
	const routes = (await run(["ip", "-n", m.ns, "route", "show", "default"])).stdout.trim().split("\n");
	t.same(
		routes,
		[`default via ${front.gateway} dev eth0 `.trim()].map((r) => r),
		"only the first network routes out",
	);
	const f = await task("f", [front]);
	const b = await task("b", [back]);
	const i = await task("i", [ingress]);
	t.same(
		(await run(["ip", "-n", i.ns, "route", "show", "default"])).stdout.trim(),
		"",
		"an ingress-only task gets no dead default route",
	);
	t.equal((await ping(m.ns, f.addrs[0]!)).code, 0, "m reaches front");
	t.equal((await ping(m.ns, b.addrs[0]!)).code, 0, "m reaches back");
	t.equal((await ping(m.ns, i.addrs[0]!)).code, 0, "m reaches ingress");
	t.not((await ping(f.ns, b.addrs[0]!)).code, 0, "front and back stay apart");
	// An explicit defaultRoute moves it.
	const n = await task("n", [front]);
	await d.attachTask(back, n.ns, ipam.allocateAddress("back", "n"), "eth1", { defaultRoute: true });
	t.match((await run(["ip", "-n", n.ns, "route", "show", "default"])).stdout, `via ${back.gateway} dev eth1`);
});
