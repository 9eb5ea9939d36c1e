// Service discovery, VIP load balancing and the routing mesh with real containers (runc) on a
// two-node lab: web.1 and web.2 run on n2, a client on n1; n1 runs no web task.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import {
	Allocator,
	DnsServer,
	InvalidPublishError,
	LB_TABLE,
	type NetworkAlloc,
	OverlayDriver,
	resolvConf,
	type ServiceRecord,
	vipRuleset,
} from "../../overlay-net/index.ts";
import { Runtime, stopLogDaemon } from "../../runtime/index.ts";
import { ensureTestImages } from "../helpers/images.ts";
import { removeCgroup, tempDir, uniqueName, waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";

t.test("rule sets refuse bad input with a named error", async (t) => {
	t.throws(() => vipRuleset([{ vip: "198.19.0.300", backends: [] }]), InvalidPublishError);
	t.throws(() => vipRuleset([{ vip: "198.19.0.3", backends: ["x; flush ruleset"] }]), /not an IPv4 address/);
	const d = new OverlayDriver({ underlayIp: "198.18.0.1", prefix: uniqueName("tsov") });
	const via = { vni: 4096 };
	const p = { protocol: "tcp" as const, publishedPort: 8080, targetPort: 80, backends: [] };
	await t.rejects(d.publish([p, p], via), /published twice/);
	await t.rejects(d.publish([{ ...p, publishedPort: 70000 }], via), /70000 is not a port/);
});

t.test("services on an overlay: DNS, VIP spreading, routing mesh, a dead task leaves within 2 s", async (t) => {
	const lab = await withLab(t, { nodes: 2 });
	const dir = tempDir("ovsvc-");
	const cgroupParent = uniqueName("tsw-ov");
	const rt = new Runtime({ root: dir.path, cgroupParent });
	const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
	const drivers = lab.nodes.map(
		(n) => new OverlayDriver({ nodeNetns: n.netns, underlayIp: n.address, prefix: n.netns }),
	);
	t.teardown(async () => {
		for (const d of drivers) await d.close();
		for (const c of rt.list({ all: true })) await rt.remove(c.id, { force: true }).catch(() => {});
		await stopLogDaemon(dir.path);
		removeCgroup(cgroupParent);
		dir.remove();
	});
	const images = await ensureTestImages();
	await rt.images.load(images.archivePath, { platform: "linux/amd64" });

	// The "node's resolver" for names that are not services: a DNS server on loopback.
	const upstream = new DnsServer({
		lookup: (n) => (n === "outside.example" ? { vip: "198.19.250.1", tasks: [] } : undefined),
		upstreams: [],
	});
	const up = await upstream.start("127.0.0.1", 0);
	t.teardown(() => upstream.stop());

	const app = ipam.createNetwork({ id: "app", name: "app" });
	const ingress = ipam.createNetwork({ id: "ingress", name: "ingress", ingress: true });
	const underlay = lab.nodes.map((n) => n.address);
	const services: Record<string, ServiceRecord> = {
		web: { vip: ipam.allocateAddress("app", "vip:web"), tasks: [] },
		api: { vip: ipam.allocateAddress("app", "vip:api"), tasks: [] },
	};
	for (const [i, d] of drivers.entries()) {
		for (const n of [app, ingress]) {
			await d.createNetwork(n);
			await d.setPeers(n, underlay);
		}
		await d.serveDns(app, (name) => services[name], [`127.0.0.1:${up.port}`]);
		await d.attachNode(ingress, ipam.allocateAddress("ingress", `node:${i}`));
	}

	// A task: its own namespace (named under the lab, so teardown sweeps it), one endpoint per
	// network, the network's resolver in /etc/resolv.conf, and a real container joining it.
	const start = async (name: string, node: number, image: string, nets: NetworkAlloc[], cmd?: string[]) => {
		const ns = `tsl-${lab.name}-${name}`;
		await run(["ip", "netns", "add", ns]);
		const addrs: string[] = [];
		for (const [k, n] of nets.entries()) {
			addrs.push(ipam.allocateAddress(n.id, name));
			await drivers[node]!.attachTask(n, ns, addrs[k]!, `eth${k}`, { defaultRoute: k === 0 });
		}
		const resolv = join(dir.path, `${name}.resolv.conf`);
		writeFileSync(resolv, resolvConf(nets[0]!.gateway));
		const c = await rt.prepare({
			image,
			cmd,
			name: `${lab.name}-${name}`,
			hostname: name,
			network: `/run/netns/${ns}`,
			volumes: [{ source: resolv, target: "/etc/resolv.conf", readonly: true }],
		});
		await rt.start(c.id);
		return { ns, id: c.id, app: addrs[0]!, ingress: addrs[1] };
	};
	const web1 = await start("web1", 1, "httpd", [app, ingress]);
	const web2 = await start("web2", 1, "httpd", [app, ingress]);
	const client = await start("client", 0, "busybox", [app], ["sleep", "600"]);
	const api1 = await start("api1", 0, "httpd", [app]);
	const webTasks = [web1, web2];
	// What the control plane does when the set of healthy tasks changes: DNS, VIPs, published ports.
	const converge = async () => {
		services.web!.tasks = webTasks.map((w) => w.app);
		services.api!.tasks = [api1.app];
		for (const d of drivers) {
			await d.setVips(app, [
				{ vip: services.web!.vip!, backends: services.web!.tasks },
				{ vip: services.api!.vip!, backends: services.api!.tasks },
			]);
			await d.publish(
				[{ protocol: "tcp", publishedPort: 8080, targetPort: 80, backends: webTasks.map((w) => w.ingress!) }],
				ingress,
			);
		}
	};
	await converge();
	const inClient = (cmd: string) => rt.exec(client.id, ["sh", "-c", cmd], { stdio: "pipe" });
	await waitFor(
		"httpd answering through the VIP",
		async () => (await inClient("timeout 3 busybox wget -q -O- http://web/")).code === 0 || undefined,
		{
			timeoutMs: 15_000,
		},
	);

	const lookup = await inClient("nslookup web; nslookup tasks.web; nslookup outside.example");
	t.match(lookup.stdout, new RegExp(`Name:\\s+web\\s+Address:\\s+${services.web!.vip}`), "web resolves to its VIP");
	for (const w of webTasks) t.match(lookup.stdout, w.app, `tasks.web lists ${w.app}`);
	t.match(lookup.stdout, "198.19.250.1", "other names are forwarded to the node's resolver");

	const hits = async (n: number, url: string, where: (cmd: string) => Promise<{ stdout: string }>) => {
		const r = await where(`for i in $(seq ${n}); do timeout 3 busybox wget -q -O- ${url}; done`);
		return [...r.stdout.matchAll(/hello from (\w+)/g)].map((m) => m[1]!);
	};
	// Two services on one overlay reach each other by name across nodes, both ways.
	const inTask = (id: string) => (cmd: string) => rt.exec(id, ["sh", "-c", cmd], { stdio: "pipe" });
	const fromApi = await hits(4, "http://web/", inTask(api1.id));
	t.ok(
		fromApi.length === 4 && fromApi.every((h) => /^web[12]$/.test(h)),
		`api (n1) reaches web (n2) by name: ${fromApi}`,
	);
	t.same(await hits(2, "http://api/", inTask(web1.id)), ["api1", "api1"], "web (n2) reaches api (n1) by name");

	const viaVip = await hits(10, "http://web/", inClient);
	t.equal(viaVip.length, 10, "every request through the VIP answered (client on n1, tasks on n2)");
	t.same([...new Set(viaVip)].sort(), ["web1", "web2"], "the VIP spreads connections over both replicas");

	// Routing mesh: n1 runs no web task, yet its published port answers, from n2 and from n1 itself.
	const fromNode = (node: string) => (cmd: string) => lab.exec(node, ["sh", "-c", cmd]);
	const mesh = await hits(6, `http://${lab.nodes[0]!.address}:8080/`, fromNode(lab.nodes[1]!.name));
	t.equal(mesh.length, 6, "port 8080 on n1 answers requests from n2");
	t.same([...new Set(mesh)].sort(), ["web1", "web2"], "and spreads them over the replicas");
	const local = await hits(2, `http://${lab.nodes[0]!.address}:8080/`, fromNode(lab.nodes[0]!.name));
	t.equal(local.length, 2, "and requests made on n1 itself");

	// web2 dies; once reported, it leaves DNS and the VIP within 2 s: measured from the report to
	// the later of the two being seen updated (DNS through the container's own resolver; the VIP
	// in the client's rule table).
	await rt.stop(web2.id, { graceMs: 0 });
	const reported = performance.now();
	webTasks.pop();
	const dnsGone = waitFor(
		"tasks.web without the dead task",
		async () => {
			const r = await inClient("nslookup tasks.web");
			return r.stdout.includes(web1.app) && !r.stdout.includes(web2.app) && performance.now();
		},
		{ timeoutMs: 5000 },
	);
	const vipGone = waitFor(
		"the VIP without the dead task",
		async () => {
			const r = await run(["nsenter", `--net=/run/netns/${client.ns}`, "nft", "list", "table", "ip", LB_TABLE]);
			return !r.stdout.includes(`${web2.app} `) && !r.stdout.includes(`${web2.app},`) && performance.now();
		},
		{ timeoutMs: 5000, intervalMs: 10 },
	);
	await converge();
	const elapsed = Math.max((await dnsGone) as number, (await vipGone) as number) - reported;
	t.ok(elapsed < 2000, `DNS and VIP updated ${elapsed.toFixed(0)} ms after the report`);
	const after = await hits(6, "http://web/", inClient);
	t.same([...new Set(after)], ["web1"], "the VIP only reaches the live task");
	const meshAfter = await hits(4, `http://${lab.nodes[0]!.address}:8080/`, fromNode(lab.nodes[1]!.name));
	t.same([...new Set(meshAfter)], ["web1"], "the mesh only reaches the live task");

	// No task left: the VIP refuses at once instead of hanging.
	webTasks.pop();
	await converge();
	const refused = await inClient("timeout 5 busybox wget -q -O- http://web/ 2>&1; echo rc=$?");
	t.match(refused.stdout, /rc=1/, "a VIP with no healthy task refuses the connection");
});
