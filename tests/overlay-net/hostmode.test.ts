// mode=host publishing: the port answers only on the node that runs the task.
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import {
	Allocator,
	HOST_TABLE,
	InvalidPublishError,
	OverlayDriver,
	PortConflictError,
} from "../../overlay-net/index.ts";
import { waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import { serveHttp } from "./http.ts";

t.test("a mode=host port answers on the task's node only, straight to the local task", async (t) => {
	const lab = await withLab(t, { nodes: 2 });
	const [n1, n2] = lab.nodes as [(typeof lab.nodes)[0], (typeof lab.nodes)[0]];
	const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
	const drivers = lab.nodes.map(
		(n) => new OverlayDriver({ nodeNetns: n.netns, underlayIp: n.address, prefix: n.netns }),
	);
	const web = ipam.createNetwork({ id: "web", name: "web" });
	const closed = ipam.createNetwork({ id: "closed", name: "closed", internal: true });
	for (const d of drivers) for (const n of [web, closed]) await d.createNetwork(n);
	const ns = `tsl-${lab.name}-w`;
	await run(["ip", "netns", "add", ns]);
	const addr = ipam.allocateAddress("web", "w");
	await drivers[1]!.attachTask(web, ns, addr);
	serveHttp(t, ns, addr, "host mode\n");
	ipam.publishPort(9090, "svc:w", { mode: "host", node: n2.name });
	await drivers[1]!.publishHost([
		{ protocol: "tcp", publishedPort: 9090, targetPort: 80, backend: addr, network: web },
	]);
	const get = (from: string, to: string) =>
		lab.exec(from, ["timeout", "3", "busybox", "wget", "-q", "-O-", `http://${to}:9090/`]);
	const page = await waitFor("the host-mode port on n2", async () => {
		const r = await get(n1.name, n2.address);
		return r.code === 0 ? r.stdout : undefined;
	});
	t.match(page, "host mode", "n2:9090 answers from n1");
	t.match((await get(n2.name, n2.address)).stdout, "host mode", "and from n2 itself");
	t.not((await get(n2.name, n1.address)).code, 0, "n1:9090 does not answer: n1 runs no such task");
	t.notMatch((await lab.exec(n1.name, ["nft", "list", "tables"])).stdout, HOST_TABLE, "n1 has no host-mode rules");
	// Conflicts are refused with a named error, before anything is changed.
	const mesh = { protocol: "tcp" as const, publishedPort: 9090, targetPort: 80, backends: [addr] };
	await t.rejects(drivers[1]!.publish([mesh], web), PortConflictError, "a mesh port over a host-mode port");
	await t.rejects(drivers[1]!.publish([mesh], web), /9090\/tcp is already published by a mode=host task/);
	await drivers[1]!.publish([{ ...mesh, publishedPort: 9091 }], web);
	await t.rejects(
		drivers[1]!.publishHost([{ protocol: "tcp", publishedPort: 9091, targetPort: 80, backend: addr, network: web }]),
		/9091\/tcp is already published by the routing mesh/,
	);
	await t.rejects(
		drivers[1]!.publishHost([{ protocol: "tcp", publishedPort: 9092, targetPort: 80, backend: addr, network: closed }]),
		InvalidPublishError,
		"an internal network has no way in from the node",
	);
	t.match((await get(n1.name, n2.address)).stdout, "host mode", "the refused changes left the port working");
	t.throws(() => ipam.publishPort(9090, "svc:other", { mode: "host", node: n2.name }), PortConflictError);
	ipam.publishPort(9090, "svc:other", { mode: "host", node: n1.name });
	await drivers[1]!.publishHost([]);
	t.not((await get(n1.name, n2.address)).code, 0, "unpublished: gone");
	t.notMatch((await lab.exec(n2.name, ["nft", "list", "tables"])).stdout, HOST_TABLE, "and its table too");
});
