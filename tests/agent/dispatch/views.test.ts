// Network views in the assignments: each worker gets, for the networks its tasks use, the remote
// endpoints with their node's underlay address, the services with VIP, names and running backends,
// and the routing mesh (every ingress port, on every node, with the node's own ingress address).
import t from "tap";
import type { Assignment, MeshView, NetworkView } from "../../../agent/dispatch/index.ts";
import { allocate, nodeIngressAddresses, nodeReserve } from "../../../agent/manager/allocator/index.ts";
import { type Task, validateServiceSpec } from "../../../agent/services/index.ts";
import { waitFor } from "../../helpers/index.ts";
import { service as svcRecord } from "../store/fixtures.ts";
import { client, cluster, dispatcher, endpoint, network, put, status, task } from "./fixtures.ts";

const app = network("app1", { name: "app", subnet: "198.19.1.0/24", gateway: "198.19.1.1", vni: 4097 });
const ingress = network("ingr1", {
	name: "ingress",
	subnet: "198.19.0.0/24",
	gateway: "198.19.0.1",
	vni: 4096,
	ingress: true,
});

const web = () => {
	const spec = validateServiceSpec({
		name: "web",
		task: { container: { image: "httpd:latest" }, networks: [{ target: "app", aliases: ["www"] }] },
		endpoint: {
			mode: "vip",
			ports: [{ protocol: "tcp", targetPort: 80, publishedPort: 8080, publishMode: "ingress" }],
		},
	});
	return svcRecord("svcweb", "web", {
		spec,
		endpoint: {
			vips: [
				{ networkId: "ingr1", addr: "198.19.0.2/24" },
				{ networkId: "app1", addr: "198.19.1.2/24" },
			],
			ports: spec.endpoint.ports,
		},
	});
};

const webTask = (nodeId: string, n: number, state: Task["status"]["state"]) =>
	task(nodeId, {
		id: `web${n}`,
		slot: n,
		serviceId: "svcweb",
		serviceName: "web",
		status: status(state),
		networks: [
			{ networkId: "ingr1", addresses: [`198.19.0.${10 + n}/24`], aliases: [] },
			{ networkId: "app1", addresses: [`198.19.1.${10 + n}/24`], aliases: ["www"] },
		],
	});

const viewOf = (a: Assignment | undefined, id: string): NetworkView | undefined =>
	a?.views?.find((v) => v.networkId === id);

/** The latest view / mesh a sink was given. */
const latest = (got: Assignment[], id: string) => {
	for (let i = got.length - 1; i >= 0; i--) {
		const v = viewOf(got[i], id);
		if (v) return v;
	}
	return undefined;
};
const latestMesh = (got: Assignment[]): MeshView | undefined => got.findLast((a) => a.mesh)?.mesh;

t.test("views: endpoints, services with VIP and running backends, the mesh on every node", async (t) => {
	const { m, ws, store } = await cluster(t, 3);
	const [w1, w2, w3] = [ws[0], ws[1], ws[2]!];
	const ip = (h: typeof w1) => h.addr.split(":")[0]!;
	await put(store, "networks", "ingr1", ingress);
	await put(store, "networks", "app1", app);
	await store.commit([{ op: "create", table: "services", id: "svcweb", value: web() }]);
	await put(store, "tasks", "web1", webTask(w1.h.peerId, 1, "running"));
	await put(store, "tasks", "web2", webTask(w2.h.peerId, 2, "starting"));
	const e = await endpoint(t, m, store);
	await dispatcher(t, e, { heartbeatMs: 200 });
	const c1 = client(t, w1, [m]);
	const c3 = client(t, w3, [m]);
	await waitFor("both connected", () => c1.sink.isConnected && c3.sink.isConnected);

	const full1 = c1.sink.fulls()[0]!;
	const v = viewOf(full1, "app1");
	t.ok(v, "w1's full set carries the view of app");
	t.same(
		v!.endpoints.map((x) => x.address),
		["198.19.1.11", "198.19.1.12"],
		"every endpoint of app, the starting one too (FDB before it serves)",
	);
	t.same(
		v!.services,
		[{ id: "svcweb", name: "web", aliases: ["www"], mode: "vip", vip: "198.19.1.2", backends: ["198.19.1.11"] }],
		"web: its VIP, alias and only its running task as backend",
	);
	t.equal(v!.endpoints.find((x) => x.address === "198.19.1.12")!.vtep, ip(w2), "web2 is reached at w2's underlay");
	t.ok(viewOf(full1, "ingr1"), "and of ingress (mesh)");

	// w3 runs nothing, yet publishes every ingress port (the routing mesh), with its own address.
	const full3 = c3.sink.fulls()[0]!;
	t.same(full3.tasks, [], "w3 has no task");
	t.same(
		full3.mesh?.ports,
		[{ protocol: "tcp", publishedPort: 8080, targetPort: 80, backends: ["198.19.0.11"] }],
		"w3 gets the mesh: port 8080 to the running task's ingress address",
	);
	t.ok(
		full3.networks.some((n) => n.id === "ingr1"),
		"with the ingress network record, to build it",
	);
	t.notOk(viewOf(full3, "app1"), "but not app's view: it has no task there");
	const nodes = [w1, w2, w3].map((w) => ({
		id: w.h.peerId,
		createdAt: store.get("nodes", w.h.peerId)!.value.createdAt,
	}));
	const want = nodeIngressAddresses(ingress, nodes);
	t.equal(full3.mesh?.address, want.get(w3.h.peerId), "its ingress address as nodeIngressAddresses gives it");
	t.equal(new Set(want.values()).size, 3, "three nodes, three distinct ingress addresses");
	const ingressView = viewOf(full3, "ingr1")!;
	t.ok(
		[...want.values()].every((a) => ingressView.endpoints.some((x) => x.address === a)),
		"every node's ingress endpoint is in the ingress view",
	);

	// web2 runs: it becomes a backend everywhere, as a change.
	const before1 = c1.sink.got.length;
	await put(store, "tasks", "web2", { ...webTask(w2.h.peerId, 2, "running") });
	await waitFor("web2 in w1's view", () => latest(c1.sink.got, "app1")?.services[0]?.backends.includes("198.19.1.12"));
	t.ok(
		c1.sink.got.slice(before1).every((a) => !a.full),
		"sent as changes, not a new full set",
	);
	await waitFor("web2 in w3's mesh", () => latestMesh(c3.sink.got)?.ports[0]?.backends.length === 2);

	// web1 fails: it leaves the backends and the endpoints.
	await put(store, "tasks", "web1", { ...webTask(w1.h.peerId, 1, "failed") });
	await waitFor("web1 gone from w1's view", () => {
		const now = latest(c1.sink.got, "app1");
		return (
			now &&
			JSON.stringify(now.services[0]?.backends) === JSON.stringify(["198.19.1.12"]) &&
			!now.endpoints.some((x) => x.address === "198.19.1.11")
		);
	});
	await waitFor(
		"and from the mesh",
		() => JSON.stringify(latestMesh(c3.sink.got)?.ports[0]?.backends) === JSON.stringify(["198.19.0.12"]),
	);

	// A status-only change that does not move a backend sends no view.
	const n3 = c3.sink.got.length;
	await put(store, "tasks", "web2", { ...webTask(w2.h.peerId, 2, "running"), status: status("running", "again") });
	await new Promise((r) => setTimeout(r, 300));
	t.equal(c3.sink.got.length, n3, "nothing sent for a change no view shows");
});

t.test("dnsrr services have no VIP; an unhealthy task is no backend", async (t) => {
	const {
		m,
		ws: [w1],
		store,
	} = await cluster(t, 1);
	await put(store, "networks", "app1", app);
	const spec = validateServiceSpec({
		name: "db",
		task: {
			container: { image: "busybox:latest", healthcheck: { test: ["CMD-SHELL", "true"] } },
			networks: [{ target: "app", aliases: [] }],
		},
		endpoint: { mode: "dnsrr", ports: [] },
	});
	await store.commit([
		{
			op: "create",
			table: "services",
			id: "svcdb",
			value: svcRecord("svcdb", "db", { spec, endpoint: { vips: [], ports: [] } }),
		},
	]);
	const db = (n: number, health?: "healthy" | "unhealthy") =>
		task(w1.h.peerId, {
			id: `db${n}`,
			slot: n,
			serviceId: "svcdb",
			serviceName: "db",
			spec: spec.task,
			status: { ...status("running"), ...(health ? { health } : {}) },
			networks: [{ networkId: "app1", addresses: [`198.19.1.${20 + n}/24`], aliases: [] }],
		});
	await put(store, "tasks", "db1", db(1, "healthy"));
	await put(store, "tasks", "db2", db(2, "unhealthy"));
	await put(store, "tasks", "db3", db(3));
	const e = await endpoint(t, m, store);
	await dispatcher(t, e, { heartbeatMs: 200 });
	const c = client(t, w1, [m]);
	await waitFor("connected", () => c.sink.isConnected);
	const s = viewOf(c.sink.fulls()[0], "app1")!.services[0]!;
	t.equal(s.mode, "dnsrr");
	t.equal(s.vip, undefined, "no VIP");
	t.same(s.backends, ["198.19.1.21"], "only the healthy task (not the unhealthy one, nor the one not checked yet)");
	t.same(c.sink.fulls()[0]!.mesh, { ports: [] }, "no published port: an empty mesh, no ingress network");
});

t.test("task addresses on ingress stay out of the nodes' reserved range", async (t) => {
	t.equal(nodeReserve(24), 63, "a /24 keeps 63 addresses for nodes");
	t.equal(nodeReserve(16), 1024, "at most 1024");
	const ids = Array.from({ length: 100 }, (_, i) => ({
		id: `node${i}`,
		createdAt: `2025-01-01T00:00:${String(i % 60).padStart(2, "0")}.000Z`,
	}));
	const got = nodeIngressAddresses(ingress, ids);
	t.equal(got.size, 63, "nodes past the range get none");
	t.equal(new Set(got.values()).size, 63, "no two nodes share one");
	const last = (a: string) => Number(a.split(".")[3]);
	t.ok(
		[...got.values()].every((a) => last(a) >= 254 - 62 && last(a) <= 254),
		"all in .192-.254",
	);
	t.same(
		[...nodeIngressAddresses(ingress, ids.slice(0, 10).reverse())].sort(),
		[...nodeIngressAddresses(ingress, ids.slice(0, 10))].sort(),
		"the same nodes in any order: the same addresses",
	);
	// The allocator fills ingress lowest first and stops before the reserved range.
	const spec = validateServiceSpec({
		name: "big",
		mode: { kind: "replicated", replicas: 300 },
		task: { container: { image: "busybox:latest" } },
		endpoint: {
			mode: "vip",
			ports: [{ protocol: "tcp", targetPort: 80, publishedPort: 8080, publishMode: "ingress" }],
		},
	});
	const svc = { id: "big", version: 1, value: svcRecord("big", "big", { spec }) };
	const r1 = allocate({ services: [svc], tasks: [], networks: [{ id: "ingr1", version: 1, value: ingress }], now: 0 });
	const allocated = r1.ops.find((o) => o.table === "services")!.value as ReturnType<typeof svcRecord>;
	const tasks = Array.from({ length: 300 }, (_, i) => ({
		id: `t${i}`,
		version: 1,
		value: task("n1", {
			id: `t${i}`,
			slot: i + 1,
			serviceId: "big",
			serviceName: "big",
			spec: spec.task,
			status: status("new"),
		}),
	}));
	const r2 = allocate({
		services: [{ id: "big", version: 2, value: allocated }],
		tasks,
		networks: [{ id: "ingr1", version: 1, value: ingress }],
		now: 0,
	});
	const addrs = r2.ops.flatMap((o) => (o.table === "tasks" ? o.value.networks.map((a) => a.addresses[0]!) : []));
	t.ok(addrs.length > 100, "many tasks got an ingress address");
	t.ok(
		addrs.every((a) => last(a.split("/")[0]!) < 192),
		"none from the nodes' range",
	);
	t.ok(r2.pending.length > 0, "the rest wait (the range is full), they do not take a node's address");
});
