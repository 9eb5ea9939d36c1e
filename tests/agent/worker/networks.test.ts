// Tasks on a real overlay across two lab nodes: each task gets its own namespace plugged into the
// network with its allocated address, a task on one node reaches a task on the other by address,
// removal deletes the namespace (and the network's sandbox with its last task), and a restarted
// worker takes its kernel state over without a second container.
import { existsSync } from "node:fs";
import t from "tap";
import type { AssignedNetwork } from "../../../agent/worker/index.ts";
import { LABEL_TASK_ID } from "../../../agent/worker/index.ts";
import { Allocator, OverlayDriver } from "../../../overlay-net/index.ts";
import { uniqueName, waitFor } from "../../helpers/index.ts";
import { withLab } from "../../helpers/lab.ts";
import { withRegistry } from "../../helpers/registry.ts";
import { fileRuntime } from "../../helpers/runtime.ts";
import { dataDir, makeTask, startWorker } from "./fixtures.ts";

const { rt } = fileRuntime("wnet");

t.test("overlay attachments: cross-node reachability, namespaces removed with their tasks, adoption", async (t) => {
	const reg = await withRegistry(t);
	const lab = await withLab(t, { nodes: 2 });
	const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
	const alloc = ipam.createNetwork({ id: uniqueName("net"), name: "app" });
	const network: AssignedNetwork = {
		id: alloc.id,
		name: alloc.name,
		vni: alloc.vni,
		subnet: alloc.subnet,
		gateway: alloc.gateway,
		internal: alloc.internal,
		peers: lab.nodes.map((n) => n.address),
	};
	const prefix = alloc.subnet.split("/")[1];
	const node = (i: number) => {
		const n = lab.nodes[i]!;
		const driver = new OverlayDriver({ nodeNetns: n.netns, underlayIp: n.address, prefix: n.netns });
		t.teardown(() => driver.close());
		// Under the lab's name, so the lab's teardown sweeps whatever a failure leaves.
		return {
			nodeId: `node-${i}-${lab.name}`,
			dataRoot: dataDir(),
			network: { driver, netnsPrefix: `tsl-${lab.name}-w${i}` },
		};
	};
	const n0 = node(0);
	const n1 = node(1);
	const image = (name: string) => `${reg.hostPort}/${name}:latest`;
	const attach = (id: string) => [
		{ networkId: network.id, addresses: [`${ipam.allocateAddress(network.id, id)}/${prefix}`], aliases: [] },
	];
	const webId = uniqueName("web");
	const web = makeTask({
		id: webId,
		image: image("httpd"),
		args: [],
		container: { hostname: "web1" },
		networks: attach(webId),
	});
	web.spec.container.args = undefined; // the image's own command
	const clientId = uniqueName("cli");
	const client = makeTask({
		id: clientId,
		image: image("busybox"),
		args: ["sleep", "300"],
		networks: attach(clientId),
	});

	const w0 = await startWorker(t, rt, n0);
	const w1 = await startWorker(t, rt, n1);
	w0.worker.setConnected(true);
	w1.worker.setConnected(true);
	await w0.worker.assign({ full: true, tasks: [web], networks: [network] });
	await w1.worker.assign({ full: true, tasks: [client], networks: [network] });
	await waitFor("both running", () => w0.last(web.id)?.state === "running" && w1.last(client.id)?.state === "running", {
		timeoutMs: 30_000,
	});
	const webNs = `/run/netns/tsl-${lab.name}-w0-${web.id}`;
	t.ok(existsSync(webNs), "the task has its own namespace");
	const webAddr = web.networks[0]!.addresses[0]!.split("/")[0]!;
	const clientCt = () => rt.list().find((c) => c.spec.labels?.[LABEL_TASK_ID] === client.id)!;
	const fetch = () =>
		rt.exec(clientCt().id, ["sh", "-c", `timeout 3 wget -q -O- http://${webAddr}/`], { stdio: "pipe" });
	const page = await waitFor(
		"web answers across nodes",
		async () => {
			const r = await fetch();
			return r.code === 0 ? r.stdout : undefined;
		},
		{ timeoutMs: 15_000 },
	);
	t.match(page, "hello from web1", "the client on node 1 reaches the task on node 0 at its address");
	const resolv = await rt.exec(clientCt().id, ["cat", "/etc/resolv.conf"], { stdio: "pipe" });
	t.match(resolv.stdout, `nameserver ${network.gateway}`, "the network's resolver");

	// The agent on node 0 restarts: its worker takes the namespace and sandbox over, same container.
	const webCt = rt.list().find((c) => c.spec.labels?.[LABEL_TASK_ID] === web.id)!;
	await w0.worker.stop();
	const w0b = await startWorker(t, rt, {
		...n0,
		network: {
			...n0.network,
			driver: new OverlayDriver({
				nodeNetns: lab.nodes[0]!.netns,
				underlayIp: lab.nodes[0]!.address,
				prefix: lab.nodes[0]!.netns,
			}),
		},
	});
	await new Promise((r) => setTimeout(r, 300));
	const webNow = rt.list({ all: true }).filter((c) => c.spec.labels?.[LABEL_TASK_ID] === web.id);
	t.same(
		webNow.map((c) => [c.id, c.status]),
		[[webCt.id, "running"]],
		"adopted: the same container, still running",
	);
	t.equal((await fetch()).code, 0, "still reachable after the restart");

	// A complete set without it: container, namespace and (its last task gone) the sandbox removed.
	w0b.worker.setConnected(true);
	await w0b.worker.assign({ full: true, tasks: [], networks: [] });
	const sandbox = `/run/netns/${lab.nodes[0]!.netns}-ov${network.vni}`;
	await waitFor("web removed", () => !rt.list({ all: true }).some((c) => c.spec.labels?.[LABEL_TASK_ID] === web.id));
	await waitFor("namespace gone", () => !existsSync(webNs));
	await waitFor("sandbox gone", () => !existsSync(sandbox));
	t.ok(
		existsSync(`/run/netns/${lab.nodes[1]!.netns}-ov${network.vni}`),
		"node 1 keeps its sandbox: its task still uses it",
	);
	t.equal((await fetch()).code !== 0, true, "the address no longer answers");
});
