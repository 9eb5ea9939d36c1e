// The demo's overlay part: an overlay network over the lab's first two nodes, two httpd containers
// of a service "web" on the second, a client container on the first finding web by name (DNS) and
// reaching both replicas through its VIP, and the routing mesh answering on the first node, which
// runs no web task. The control plane will make these decisions; here the demo makes them.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NetworkInspect } from "../../agent/api/index.ts";
import {
	Allocator,
	type NetworkAlloc,
	OverlayDriver,
	resolvConf,
	type ServiceRecord,
} from "../../overlay-net/index.ts";
import { execInNode } from "./exec.ts";
import { run } from "./shell.ts";
import type { LabRecord } from "./state.ts";

export async function showOverlay(
	rec: LabRecord,
	cli: string,
	reg: string,
	say: (m: string) => void,
	signal: AbortSignal,
): Promise<void> {
	const [n1, n2] = rec.nodes;
	if (!n1 || !n2) return;
	const t0 = performance.now();
	const tsswarm = async (node: string, args: string[]) => {
		const r = await execInNode(rec, node, [cli, ...args], { signal });
		if (r.code !== 0) throw new Error(`tsswarm ${args[0]} on ${node} failed: ${r.stderr.trim().split("\n").at(-1)}`);
		return r.stdout.trim();
	};
	// The networks as the cluster store allocated them (VNI, subnet, gateway); task addresses and
	// VIPs are still the demo's decisions until the control plane's allocator makes them.
	const stored = JSON.parse(await tsswarm(n1.name, ["network", "inspect", "app", "ingress"])) as NetworkInspect[];
	const toAlloc = (n: NetworkInspect): NetworkAlloc => ({
		id: n.Name,
		name: n.Name,
		vni: Number(n.Options["com.docker.network.driver.overlay.vxlanid_list"]),
		subnet: n.IPAM.Config[0]!.Subnet,
		gateway: n.IPAM.Config[0]!.Gateway,
		internal: n.Internal,
		...(n.Ingress ? { ingress: true } : {}),
		addresses: { [n.IPAM.Config[0]!.Gateway]: "gateway" },
	});
	const ipam = new Allocator({
		pools: ["198.19.0.0/16"],
		networks: Object.fromEntries(stored.map((n) => [n.Name, toAlloc(n)])),
	});
	const drivers = [n1, n2].map(
		(n) => new OverlayDriver({ nodeNetns: n.netns, underlayIp: n.address, prefix: n.netns }),
	);
	const app = ipam.networks().find((n) => n.name === "app")!;
	const ingress = ipam.networks().find((n) => n.ingress)!;
	const services: Record<string, ServiceRecord> = { web: { vip: ipam.allocateAddress("app", "vip:web"), tasks: [] } };
	const containers: Array<{ node: string; id: string }> = [];
	try {
		for (const [i, d] of drivers.entries()) {
			for (const n of [app, ingress]) {
				await d.createNetwork(n);
				await d.setPeers(n, [n1.address, n2.address]);
			}
			await d.serveDns(app, (name) => services[name], []);
			await d.attachNode(ingress, ipam.allocateAddress("ingress", `node:${i}`));
		}
		const task = async (name: string, node: 0 | 1, nets: NetworkAlloc[], image: string, cmd: string[] = []) => {
			const ns = `tsl-${rec.name}-${name}`;
			await run(["ip", "netns", "add", ns]);
			const addrs: string[] = [];
			for (const [k, n] of nets.entries()) {
				addrs.push(ipam.allocateAddress(n.id, name));
				await drivers[node]!.attachTask(n, ns, addrs[k]!, `eth${k}`, { defaultRoute: k === 0 });
			}
			const lab = rec.nodes[node]!;
			const resolv = join(lab.dir, `${name}.resolv.conf`);
			writeFileSync(resolv, resolvConf(app.gateway));
			const id = await tsswarm(lab.name, [
				"run",
				"-d",
				"--name",
				name,
				"--network",
				`/run/netns/${ns}`,
				"-v",
				`${resolv}:/etc/resolv.conf:ro`,
				`${reg}/${image}:latest`,
				...cmd,
			]);
			containers.push({ node: lab.name, id });
			return { app: addrs[0]!, ingress: addrs[1] };
		};
		const webs = [await task("web1", 1, [app, ingress], "httpd"), await task("web2", 1, [app, ingress], "httpd")];
		await task("client", 0, [app], "busybox", ["sleep", "600"]);
		services.web!.tasks = webs.map((w) => w.app);
		for (const d of drivers) {
			await d.setVips(app, [{ vip: services.web!.vip!, backends: services.web!.tasks }]);
			await d.publish(
				[{ protocol: "tcp", publishedPort: 8080, targetPort: 80, backends: webs.map((w) => w.ingress!) }],
				ingress,
			);
		}
		say(
			`\noverlay network app (VNI ${app.vni}, ${app.subnet}) over ${n1.name} and ${n2.name}, set up in ${Math.round(performance.now() - t0)} ms:`,
		);
		say(`  web: VIP ${services.web!.vip}, tasks web1 ${webs[0]!.app} and web2 ${webs[1]!.app} on ${n2.name}`);
		const fetch = `for i in 1 2 3 4; do timeout 3 wget -q -O- http://web/ || echo failed; done`;
		const seen = async () => {
			const r = await tsswarm(n1.name, ["exec", "client", "sh", "-c", fetch]);
			return [...r.matchAll(/hello from (\w+)|failed/g)].map((m) => m[1] ?? "failed");
		};
		let answers = await seen();
		for (let i = 0; i < 20 && answers.includes("failed"); i++) answers = await seen(); // httpd starting
		say(`  client on ${n1.name}: wget http://web/ x4 -> ${answers.join(", ")}   (DNS -> VIP -> both replicas)`);
		const mesh = await execInNode(rec, n2.name, ["curl", "-fsS", "--max-time", "3", `http://${n1.address}:8080/`], {
			signal,
		});
		say(
			`  routing mesh: ${n2.name} -> ${n1.address}:8080 (${n1.name} runs no web task) -> ${mesh.stdout.replace(/<[^>]+>/g, "").trim() || mesh.stderr.trim()}`,
		);
	} finally {
		for (const c of containers) await tsswarm(c.node, ["rm", "-f", c.id]).catch(() => {});
		for (const d of drivers) await d.close();
	}
}
