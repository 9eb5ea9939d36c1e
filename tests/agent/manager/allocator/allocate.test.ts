// The allocator's pass on plain records: VIPs and task addresses, dynamic and explicit published
// ports, reasons for what cannot be allocated (unknown network, taken port, full subnet), release
// by terminal tasks, and that a pass over its own output (or the same input) changes nothing.
import t from "tap";
import {
	ALLOCATED_MESSAGE,
	allocate,
	checkPorts,
	DYNAMIC_PORTS,
	PortInUseError,
	WAITING_MESSAGE,
} from "../../../../agent/manager/allocator/index.ts";
import { validateServiceSpec } from "../../../../agent/services/index.ts";
import { World } from "./fixtures.ts";

/** Runs passes until one writes nothing (at most 3); returns how many wrote. */
const settle = (w: World) => {
	for (let i = 0; i < 3; i++) {
		const r = allocate(w.input());
		if (r.ops.length === 0) return i;
		w.apply(r.ops);
	}
	throw new Error("the allocator keeps writing");
};

t.test("VIP and task addresses on one network, aliases, pending for the scheduler", async (t) => {
	const w = new World();
	const back = w.network("back", "198.19.1.0/24");
	w.service("web", { task: { networks: [{ target: "back", aliases: ["www"] }] } }, 2);
	const r = allocate(w.input());
	t.same(r.pending, []);
	t.equal(r.ops.length, 3, "one service and two task writes");
	w.apply(r.ops);
	t.same(w.svc("web").endpoint, { vips: [{ networkId: back, addr: "198.19.1.2/24" }], ports: [] });
	const tasks = w.tasksOf("web");
	t.same(
		tasks.map((x) => x.networks),
		[
			[{ networkId: back, addresses: ["198.19.1.3/24"], aliases: ["www"] }],
			[{ networkId: back, addresses: ["198.19.1.4/24"], aliases: ["www"] }],
		],
	);
	for (const x of tasks) {
		t.equal(x.status.state, "pending");
		t.equal(x.status.message, ALLOCATED_MESSAGE);
		t.equal(x.status.err, undefined);
	}
	t.equal(allocate(w.input()).ops.length, 0, "a second pass writes nothing");
});

t.test("two networks, by name and by id: a VIP on each, an address on each, in spec order", async (t) => {
	const w = new World();
	const a = w.network("a", "198.19.2.0/24");
	const b = w.network("b", "198.19.3.0/24");
	w.service("api", { task: { networks: [{ target: b }, { target: "a", aliases: ["x"] }] } }, 1);
	w.apply(allocate(w.input()).ops);
	t.same(w.svc("api").endpoint?.vips, [
		{ networkId: b, addr: "198.19.3.2/24" },
		{ networkId: a, addr: "198.19.2.2/24" },
	]);
	t.same(w.tasksOf("api")[0]!.networks, [
		{ networkId: b, addresses: ["198.19.3.3/24"], aliases: [] },
		{ networkId: a, addresses: ["198.19.2.3/24"], aliases: ["x"] },
	]);
	t.equal(allocate(w.input()).ops.length, 0);
});

t.test("dynamic mesh ports: unique, in range, avoiding explicit ones, stable across passes", async (t) => {
	const w = new World();
	const ingress = w.network("ingress", "198.19.0.0/24", { ingress: true });
	for (const n of ["d1", "d2", "d3"])
		w.service(n, { endpoint: { ports: [{ targetPort: 80 }, { targetPort: 443 }] } }, 1);
	w.service("udp", { endpoint: { ports: [{ targetPort: 53, protocol: "udp" }] } });
	// Created after them (allocated after them), yet its port is not handed out to them.
	w.service("pinned", { endpoint: { ports: [{ targetPort: 80, publishedPort: DYNAMIC_PORTS.min }] } });
	t.equal(settle(w), 1, "one pass allocates everything");
	const got = ["d1", "d2", "d3"].flatMap((n) => w.svc(n).endpoint!.ports.map((p) => p.publishedPort!));
	t.equal(new Set(got).size, 6, `six distinct ports: ${got}`);
	for (const p of got) t.ok(p > DYNAMIC_PORTS.min && p <= DYNAMIC_PORTS.max, `${p} in range, not the explicit one`);
	t.equal(w.svc("udp").endpoint!.ports[0]!.publishedPort, DYNAMIC_PORTS.min, "udp is its own space");
	t.equal(w.svc("pinned").endpoint!.ports[0]!.publishedPort, DYNAMIC_PORTS.min);
	t.same(w.svc("d1").endpoint!.vips, [{ networkId: ingress, addr: "198.19.0.2/24" }], "a VIP on ingress");
	t.same(
		w.tasksOf("d1")[0]!.networks.map((n) => n.networkId),
		[ingress],
		"its task is on ingress",
	);

	// Stable: a spec change elsewhere, a service before it removed, another pass.
	const before = w.svc("d2").endpoint!.ports;
	w.setService("d2", (s) => ({ ...s, spec: { ...s.spec, labels: { v: "2" } }, specVersion: 2 }));
	w.services = w.services.filter((r) => r.value.spec.name !== "d1");
	t.equal(settle(w), 0, "nothing to write");
	t.same(w.svc("d2").endpoint!.ports, before, "d2 keeps its ports");
	// Positive control: a new service takes the lowest free port, which d1 gave back.
	w.service("d4", { endpoint: { ports: [{ targetPort: 80 }] } });
	settle(w);
	t.equal(w.svc("d4").endpoint!.ports[0]!.publishedPort, Math.min(...got), "d1's port is reused");
});

t.test("an explicit port another service holds: pending reason; checkPorts refuses it", async (t) => {
	const w = new World();
	w.network("ingress", "198.19.0.0/24", { ingress: true });
	w.service("web", { endpoint: { ports: [{ targetPort: 80, publishedPort: 8080 }] } }, 1);
	settle(w);
	const apiSpec = { endpoint: { ports: [{ targetPort: 80, publishedPort: 8080 }] } };
	const err = t.throws(() =>
		checkPorts(w.services, validateServiceSpec({ name: "api", ...apiSpec, task: { container: { image: "a" } } })),
	);
	t.ok(err instanceof PortInUseError, "a named error");
	t.equal((err as PortInUseError).code, "ERR_PORT_IN_USE");
	t.equal((err as Error).message, "port 8080/tcp is already in use by service web");
	// Positive controls: another port, another protocol, the same service updating itself.
	const spec = (name: string, p: object) =>
		validateServiceSpec({ name, endpoint: { ports: [{ targetPort: 80, ...p }] }, task: { container: { image: "a" } } });
	t.doesNotThrow(() => checkPorts(w.services, spec("api", { publishedPort: 8081 })));
	t.doesNotThrow(() => checkPorts(w.services, spec("api", { publishedPort: 8080, protocol: "udp" })));
	t.doesNotThrow(() => checkPorts(w.services, spec("web", { publishedPort: 8080 })));
	t.throws(() => checkPorts(w.services, spec("api", { publishedPort: 8080, publishMode: "host" })), PortInUseError);

	// Stored anyway (a race with create): the allocator says why, and the task waits.
	const api = w.service("api", apiSpec, 1);
	const r = allocate(w.input());
	t.same(r.pending, [
		{ table: "services", id: api.id, reason: "port 8080/tcp is already in use by service web" },
		{ table: "tasks", id: w.tasksOf("api")[0]!.id, reason: "port 8080/tcp is already in use by service web" },
	]);
	w.apply(r.ops);
	const task = w.tasksOf("api")[0]!;
	t.equal(task.status.state, "new");
	t.equal(task.status.message, WAITING_MESSAGE);
	t.equal(task.status.err, "port 8080/tcp is already in use by service web");
	t.equal(w.svc("api").endpoint, undefined);
	t.equal(w.svc("web").endpoint!.ports[0]!.publishedPort, 8080, "web keeps it");
	t.equal(allocate(w.input()).ops.length, 0, "the same reason is not written again");
	// Once web is gone, api gets the port in one pass.
	w.services = w.services.filter((x) => x.value.spec.name !== "web");
	w.tasks = w.tasks.filter((x) => x.value.serviceName !== "web");
	t.equal(settle(w), 1);
	t.equal(w.svc("api").endpoint!.ports[0]!.publishedPort, 8080);
	t.equal(w.tasksOf("api")[0]!.status.state, "pending");
	t.equal(w.tasksOf("api")[0]!.status.err, undefined, "the reason is cleared");
});

t.test("an unknown network: the reason on the service and its tasks, allocated once it exists", async (t) => {
	const w = new World();
	const svc = w.service("web", { task: { networks: [{ target: "nope" }] } }, 2);
	const r = allocate(w.input());
	t.same(
		r.pending.map((p) => p.reason),
		["network nope not found", "network nope not found", "network nope not found"],
	);
	t.equal(r.pending[0]!.id, svc.id);
	w.apply(r.ops);
	t.same(
		w.tasksOf("web").map((x) => [x.status.state, x.status.err]),
		[
			["new", "network nope not found"],
			["new", "network nope not found"],
		],
	);
	t.equal(allocate(w.input()).ops.length, 0, "no write loop");
	const nope = w.network("nope", "198.19.9.0/24");
	t.equal(settle(w), 1);
	t.same(
		w.tasksOf("web").map((x) => [x.status.state, x.networks[0]?.networkId]),
		[
			["pending", nope],
			["pending", nope],
		],
	);
});

t.test("a full /29: the reason, no write loop, and the freed address once a task ends", async (t) => {
	const w = new World();
	w.network("small", "198.19.4.0/29"); // .1 gateway, .2-.6 usable: a VIP and four tasks
	w.service("web", { task: { networks: [{ target: "small" }] } }, 5);
	const r = allocate(w.input());
	const last = w.tasksOf("web")[4]!;
	t.same(r.pending, [{ table: "tasks", id: last.id, reason: "no address available on network small" }]);
	w.apply(r.ops);
	t.same(
		w.tasksOf("web").map((x) => x.networks[0]?.addresses[0] ?? x.status.err),
		["198.19.4.3/29", "198.19.4.4/29", "198.19.4.5/29", "198.19.4.6/29", "no address available on network small"],
	);
	t.equal(allocate(w.input()).ops.length, 0, "the same reason is not written again");
	// A running task keeps its address; one that ended gives it back.
	const [first, second] = w.tasksOf("web");
	w.setTask(first!.id, (x) => ({ ...x, status: { ...x.status, state: "running" } }));
	t.equal(allocate(w.input()).ops.length, 0, "running tasks still hold theirs");
	w.setTask(second!.id, (x) => ({ ...x, status: { ...x.status, state: "failed" } }));
	const again = allocate(w.input());
	t.same(again.pending, []);
	w.apply(again.ops);
	const freed = w.tasksOf("web")[4]!;
	t.equal(freed.status.state, "pending");
	t.same(freed.networks[0]!.addresses, ["198.19.4.4/29"], "the failed task's address");
	t.equal(allocate(w.input()).ops.length, 0);
});

t.test("deterministic and idempotent over a mixed cluster", async (t) => {
	const build = () => {
		const w = new World();
		w.network("ingress", "198.19.0.0/24", { ingress: true });
		w.network("back", "198.19.5.0/24");
		w.network("front", "198.19.6.0/24");
		w.service("web", { task: { networks: [{ target: "front" }] }, endpoint: { ports: [{ targetPort: 80 }] } }, 3);
		w.service("api", { task: { networks: [{ target: "front" }, { target: "back" }] } }, 2);
		w.service("db", { task: { networks: [{ target: "back" }] }, endpoint: { mode: "dnsrr" } }, 1);
		w.service("lost", { task: { networks: [{ target: "gone" }] } }, 1);
		w.service("edge", { endpoint: { ports: [{ targetPort: 80, publishedPort: 8080, publishMode: "host" }] } }, 1);
		return w;
	};
	const a = build();
	const b = build();
	b.services.reverse();
	b.tasks.reverse();
	b.networks.reverse();
	const ra = allocate(a.input());
	const rb = allocate(b.input());
	t.same(ra, rb, "the same records in another order give the same result");
	t.same(ra, allocate(a.input()), "the same input twice gives the same result");
	a.apply(ra.ops);
	const second = allocate(a.input());
	t.same(second.ops, [], "a pass over its own output writes nothing");
	t.same(
		second.pending.map((p) => p.reason),
		["network gone not found", "network gone not found"],
	);
	t.same(a.svc("edge").endpoint?.ports, [
		{ protocol: "tcp", targetPort: 80, publishMode: "host", publishedPort: 8080 },
	]);
	t.same(a.svc("edge").endpoint?.vips, [], "host-mode ports need no ingress VIP");
	t.same(a.tasksOf("edge")[0]!.networks, [], "nor an ingress address");
});

t.test("dnsrr: no VIP, tasks still get addresses", async (t) => {
	const w = new World();
	const back = w.network("back", "198.19.7.0/24");
	w.service("db", { task: { networks: [{ target: "back" }] }, endpoint: { mode: "dnsrr" } }, 2);
	const r = allocate(w.input());
	t.same(
		r.ops.map((o) => o.table),
		["tasks", "tasks"],
		"nothing to write on the service",
	);
	w.apply(r.ops);
	t.equal(w.svc("db").endpoint, undefined);
	t.same(
		w.tasksOf("db").map((x) => x.networks),
		[
			[{ networkId: back, addresses: ["198.19.7.2/24"], aliases: [] }],
			[{ networkId: back, addresses: ["198.19.7.3/24"], aliases: [] }],
		],
		"the lowest addresses go to tasks (no VIP took one)",
	);
	// Positive control: switched to vip mode, it gets a VIP.
	w.setService("db", (s) => ({ ...s, spec: { ...s.spec, endpoint: { mode: "vip", ports: [] } } }));
	settle(w);
	t.same(w.svc("db").endpoint?.vips, [{ networkId: back, addr: "198.19.7.4/24" }]);
});

t.test("a spec update moves the VIP set and releases what it left", async (t) => {
	const w = new World();
	const a = w.network("a", "198.19.8.0/24");
	const b = w.network("b", "198.19.10.0/24");
	w.service("web", { task: { networks: [{ target: "a" }, { target: "b" }] } });
	settle(w);
	w.setService("web", (s) => ({
		...s,
		spec: { ...s.spec, task: { ...s.spec.task, networks: [{ target: "b", aliases: [] }] } },
	}));
	// In the same pass, a newer service on a: web lets go of its VIP there before api is allocated.
	w.service("api", { task: { networks: [{ target: "a" }] } });
	t.equal(settle(w), 1);
	t.same(w.svc("web").endpoint?.vips, [{ networkId: b, addr: "198.19.10.2/24" }], "kept its VIP on b");
	t.same(w.svc("api").endpoint?.vips, [{ networkId: a, addr: "198.19.8.2/24" }], "web's old VIP on a is free again");
});

t.test("tasks that are not new or not wanted are left alone", async (t) => {
	const w = new World();
	w.network("back", "198.19.11.0/24");
	const svc = w.service("web", { task: { networks: [{ target: "back" }] } }, 2);
	const [x, y] = w.tasksOf("web");
	w.setTask(x!.id, (v) => ({ ...v, desiredState: "shutdown" }));
	w.setTask(y!.id, (v) => ({ ...v, serviceId: "svcgone000000000000000000" }));
	const r = allocate(w.input());
	t.same(
		r.ops.map((o) => o.id),
		[svc.id],
		"only the service is written",
	);
	t.same(r.pending, []);
});

t.test("a port let go of by a newer service goes to an older one in the same pass", async (t) => {
	const w = new World();
	const ingress = w.network("ingress", "198.19.0.0/24", { ingress: true });
	const back = w.network("back", "198.19.14.0/24");
	const old = w.service("old", { task: { networks: [{ target: "back" }] } }, 1);
	w.service("new", { endpoint: { ports: [{ targetPort: 80, publishedPort: 8080 }] } });
	settle(w);
	// old now asks for 8080 while new gives it up: one pass settles both.
	w.setService("old", (s) => ({
		...s,
		spec: {
			...s.spec,
			endpoint: {
				mode: "vip",
				ports: [{ protocol: "tcp", targetPort: 80, publishedPort: 8080, publishMode: "ingress" }],
			},
		},
	}));
	w.setService("new", (s) => ({ ...s, spec: { ...s.spec, endpoint: { mode: "vip", ports: [] } } }));
	w.task(old, 2);
	const r = allocate(w.input());
	t.same(r.pending, []);
	w.apply(r.ops);
	t.equal(w.svc("old").endpoint!.ports[0]!.publishedPort, 8080);
	t.same(
		w.svc("old").endpoint!.vips.map((v) => v.networkId),
		[ingress, back],
		"VIPs on ingress and its own network",
	);
	t.same(
		w.tasksOf("old")[1]!.networks.map((n) => n.networkId),
		[ingress, back],
		"a new task: ingress first, then its network",
	);
	t.equal(w.svc("new").endpoint, undefined, "no ports, no networks: no endpoint");
	t.equal(allocate(w.input()).ops.length, 0);
});
