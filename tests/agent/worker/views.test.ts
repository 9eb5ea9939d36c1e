// Network views applied by the worker on real lab nodes: DNS on the network's gateway (SERVICE →
// VIP, tasks.SERVICE → tasks, aliases), the VIP spreading over both replicas on another node, the
// routing mesh answering on a node that runs no replica, a view change taking a replica out, and a
// restarted worker serving DNS again from its persisted view before any manager speaks to it.
import t from "tap";
import type { MeshView, NetworkView } from "../../../agent/dispatch/index.ts";
import type { AssignedNetwork } from "../../../agent/worker/index.ts";
import { LABEL_TASK_ID } from "../../../agent/worker/index.ts";
import { Allocator, OverlayDriver } from "../../../overlay-net/index.ts";
import { uniqueName, waitFor } from "../../helpers/index.ts";
import { withLab } from "../../helpers/lab.ts";
import { withRegistry } from "../../helpers/registry.ts";
import { fileRuntime } from "../../helpers/runtime.ts";
import { hostsVia, resolveIn } from "../../helpers/services.ts";
import { dataDir, makeTask, startWorker } from "./fixtures.ts";

const { rt } = fileRuntime("wview");

t.test("views: DNS, VIP over both replicas, mesh on a node with none, restart from the persisted view", async (t) => {
	const reg = await withRegistry(t);
	const lab = await withLab(t, { nodes: 2 });
	const [l0, l1] = [lab.nodes[0]!, lab.nodes[1]!];
	const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
	const rec = (a: ReturnType<Allocator["createNetwork"]>): AssignedNetwork => ({
		id: a.id,
		name: a.name,
		vni: a.vni,
		subnet: a.subnet,
		gateway: a.gateway,
		internal: a.internal,
		...(a.ingress ? { ingress: true } : {}),
	});
	const app = rec(ipam.createNetwork({ id: uniqueName("app"), name: "app" }));
	const ingress = rec(ipam.createNetwork({ id: uniqueName("ing"), name: "ingress", ingress: true }));
	const cidr = (n: AssignedNetwork, owner: string) => `${ipam.allocateAddress(n.id, owner)}/${n.subnet.split("/")[1]}`;
	const bare = (c: string) => c.split("/")[0]!;
	const vip = ipam.allocateAddress(app.id, "vip:web");
	const nodeAddr = [ipam.allocateAddress(ingress.id, "node0"), ipam.allocateAddress(ingress.id, "node1")];

	const image = (name: string) => `${reg.hostPort}/${name}:latest`;
	const web = [1, 2].map((i) => {
		const id = uniqueName(`web${i}`);
		const task = makeTask({
			id,
			service: "web",
			slot: i,
			image: image("httpd"),
			args: [],
			container: { hostname: `web${i}` },
			networks: [
				{ networkId: ingress.id, addresses: [cidr(ingress, id)], aliases: [] },
				{ networkId: app.id, addresses: [cidr(app, id)], aliases: ["www"] },
			],
		});
		task.spec.container.args = undefined; // the image's own command
		return task;
	});
	const clientId = uniqueName("cli");
	const client = makeTask({
		id: clientId,
		image: image("busybox"),
		args: ["sleep", "300"],
		networks: [{ networkId: app.id, addresses: [cidr(app, clientId)], aliases: [] }],
	});
	const appAddr = (x: (typeof web)[number]) => bare(x.networks.find((a) => a.networkId === app.id)!.addresses[0]!);
	const ingAddr = (x: (typeof web)[number]) => bare(x.networks.find((a) => a.networkId === ingress.id)!.addresses[0]!);

	// What the leader's dispatcher would send (agent/manager/dispatcher/views.ts).
	const views = (backends: typeof web): NetworkView[] => [
		{
			networkId: app.id,
			peers: [l0.address, l1.address],
			endpoints: [
				...web.map((w) => ({ address: appAddr(w), vtep: l0.address })),
				{ address: bare(client.networks[0]!.addresses[0]!), vtep: l1.address },
			],
			services: [{ id: "svc-web", name: "web", aliases: ["www"], mode: "vip", vip, backends: backends.map(appAddr) }],
		},
		{
			networkId: ingress.id,
			peers: [l0.address, l1.address],
			endpoints: [
				...web.map((w) => ({ address: ingAddr(w), vtep: l0.address })),
				{ address: nodeAddr[0]!, vtep: l0.address },
				{ address: nodeAddr[1]!, vtep: l1.address },
			],
			services: [],
		},
	];
	const mesh = (i: number, backends: typeof web): MeshView => ({
		networkId: ingress.id,
		address: nodeAddr[i]!,
		ports: [{ protocol: "tcp", publishedPort: 8080, targetPort: 80, backends: backends.map(ingAddr) }],
	});

	const driverFor = (i: number) => {
		const n = lab.nodes[i]!;
		const d = new OverlayDriver({ nodeNetns: n.netns, underlayIp: n.address, prefix: n.netns });
		t.teardown(() => d.close());
		return d;
	};
	const node = (i: number, driver: OverlayDriver, dataRoot = dataDir()) => ({
		nodeId: `node-${i}-${lab.name}`,
		dataRoot,
		// Lab nodes have no way out: names that are no service are not forwarded anywhere.
		network: { driver, netnsPrefix: `tsl-${lab.name}-w${i}`, dnsUpstreams: [] },
	});
	const n0 = node(0, driverFor(0));
	const d1 = driverFor(1);
	const n1 = node(1, d1);
	const w0 = await startWorker(t, rt, n0);
	const w1 = await startWorker(t, rt, n1);
	w0.worker.setConnected(true);
	w1.worker.setConnected(true);
	await w0.worker.assign({
		full: true,
		tasks: web,
		networks: [app, ingress],
		views: views(web),
		mesh: mesh(0, web),
	});
	await w1.worker.assign({
		full: true,
		tasks: [client],
		networks: [app, ingress],
		views: views(web),
		mesh: mesh(1, web),
	});
	await waitFor(
		"all running",
		() => [...web.map((w) => w0.last(w.id)?.state), w1.last(client.id)?.state].every((s) => s === "running"),
		{ timeoutMs: 60_000 },
	);
	const clientCt = () => rt.list().find((c) => c.spec.labels?.[LABEL_TASK_ID] === client.id)!;
	const sh = (cmd: string) => rt.exec(clientCt().id, ["sh", "-c", cmd], { stdio: "pipe" });
	const resolve = (name: string) => resolveIn(sh, name);
	t.same(await waitFor("web resolves", () => resolve("web"), { timeoutMs: 15_000 }), [vip], "web -> its VIP");
	t.same(await resolve("tasks.web"), web.map(appAddr).sort(), "tasks.web -> both task addresses");
	t.same(await resolve("www"), [vip], "the alias -> the VIP");
	t.same(await resolve("nosuchservice"), undefined, "control: a name that is no service does not resolve");

	const hosts = (n: number) => hostsVia(sh, "http://web/", n);
	const both = await waitFor(
		"the VIP reaches both replicas",
		async () => {
			const s = await hosts(4);
			return s.includes("web1") && s.includes("web2") ? s : undefined;
		},
		{ timeoutMs: 20_000 },
	);
	t.ok(
		both.every((h) => h === "web1" || h === "web2"),
		`the client on node 1 reaches both replicas on node 0 through the VIP (${both.join(", ")})`,
	);

	// The routing mesh: node 1 runs no web task and answers 8080; an unpublished port does not.
	const curl = (port: number) =>
		lab.exec(l0.name, ["curl", "-sS", "--max-time", "3", `http://${l1.address}:${port}/`]).then((r) => r.stdout);
	t.match(
		await waitFor("8080 on node 1", () => curl(8080), { timeoutMs: 15_000 }),
		/hello from web[12]/,
		"port 8080 answers on the node that runs no replica",
	);
	t.notMatch(await curl(8081), /hello/, "control: 8081 is not published");

	// web2 stops being a backend: a new view; it leaves DNS and the VIP.
	await w1.worker.assign({ full: false, tasks: [], networks: [], views: views([web[0]!]).slice(0, 1) });
	await waitFor(
		"tasks.web without web2",
		async () => JSON.stringify(await resolve("tasks.web")) === JSON.stringify([appAddr(web[0]!)]),
		{ timeoutMs: 10_000 },
	);
	t.same(await hosts(4), ["web1", "web1", "web1", "web1"], "the VIP only reaches web1 now");

	// The agent on node 1 stops: its DNS server goes with it (the kernel state stays).
	await w1.worker.stop();
	d1.close();
	t.same(await resolve("web"), undefined, "control: no DNS while the worker is down");
	// It starts again with no manager: DNS and VIPs come back from the persisted view.
	const w1b = await startWorker(t, rt, node(1, driverFor(1), n1.dataRoot));
	t.same(
		await waitFor("web resolves again", () => resolve("web"), { timeoutMs: 15_000 }),
		[vip],
		"after the restart, before any assignment: web -> its VIP again",
	);
	t.same(await resolve("tasks.web"), [appAddr(web[0]!)], "with the view as last received");
	t.same(await hosts(2), ["web1", "web1"], "the VIP rules are the persisted ones");
	t.match(await curl(8080), /hello from web[12]/, "and the mesh still answers on node 1");
	t.notOk(w1b.worker.connected, "all of it offline: no manager spoke to the worker");
});
