// schedule(): spread over zones (nested preferences, uneven zones, tasks already there) and over
// nodes, pending tasks with Swarm's reasons (resources, platform, drain, max per node, host ports),
// accounting carried between batches, and validatePlacement() for `service create`.
import t from "tap";
import {
	InvalidConstraintError,
	InvalidPlacementError,
	NodeSet,
	Pipeline,
	type SchedNode,
	type SchedTask,
	type SchedTaskSpec,
	schedule,
	validatePlacement,
} from "../../../../agent/manager/scheduler/index.ts";
import { CPU, GB, node, perNode, tasks } from "./fixtures.ts";

const zoneOf = (set: NodeSet, nodeId: string) => set.get(nodeId)?.node.labels.zone ?? "";
function perZone(set: NodeSet, assignments: Map<string, string>): Record<string, number> {
	const out: Record<string, number> = {};
	for (const n of assignments.values()) out[zoneOf(set, n)] = (out[zoneOf(set, n)] ?? 0) + 1;
	return out;
}
const zoned = (counts: Record<string, number>): SchedNode[] =>
	Object.entries(counts).flatMap(([zone, k]) =>
		Array.from({ length: k }, (_, i) => node(`${zone}${i + 1}`, { labels: { zone } })),
	);
const spreadZone: SchedTaskSpec = { placement: { preferences: [{ spread: "node.labels.zone" }] } };

t.test("3 zones of 3 nodes, 9 replicas: 3 per zone, 1 per node", async (t) => {
	const set = new NodeSet(zoned({ a: 3, b: 3, c: 3 }));
	const r = schedule(tasks("web", 9, spreadZone), set);
	t.equal(r.pending.size, 0);
	t.same(perZone(set, r.assignments), { a: 3, b: 3, c: 3 });
	t.same([...perNode(r.assignments).values()], Array(9).fill(1), "every node one");
	t.equal(set.get("a1")?.serviceTasks("web"), 1, "the NodeSet counts what was placed");
});

t.test("uneven zones (1, 2, 5 nodes): still 3 per zone, even inside each zone", async (t) => {
	const set = new NodeSet(zoned({ a: 1, b: 2, c: 5 }));
	const r = schedule(tasks("web", 9, spreadZone), set);
	t.same(perZone(set, r.assignments), { a: 3, b: 3, c: 3 }, "the zone is the unit, not the node");
	const n = perNode(r.assignments);
	t.equal(n.get("a1"), 3, "the lone node of zone a takes its zone's 3");
	t.same([n.get("b1"), n.get("b2")].sort(), [1, 2]);
	t.equal([1, 2, 3, 4, 5].filter((i) => n.get(`c${i}`) === 1).length, 3, "zone c: 3 nodes with one each");
});

t.test("without a spread: fewest tasks of the service, then fewest tasks in all", async (t) => {
	const set = new NodeSet([node("busy"), node("idle"), node("mid")]);
	for (let i = 0; i < 4; i++) set.addTask("busy", { id: `o${i}`, serviceId: "other", spec: {} });
	set.addTask("mid", { id: "o9", serviceId: "other", spec: {} });
	const first = schedule(tasks("web", 1), set);
	t.equal(first.assignments.get("web.1"), "idle", "fewest tasks in all breaks the tie");
	const r = schedule(tasks("api", 6), set);
	t.same(Object.fromEntries(perNode(r.assignments)), { idle: 2, mid: 2, busy: 2 }, "even per service");
});

t.test("nested preferences: zones, then racks inside each zone", async (t) => {
	const nodes: SchedNode[] = [];
	for (const zone of ["a", "b"]) {
		for (const rack of ["r1", "r2"]) {
			for (let i = 0; i < 2; i++) nodes.push(node(`${zone}-${rack}-${i}`, { labels: { zone, rack } }));
		}
	}
	const set = new NodeSet(nodes);
	const spec: SchedTaskSpec = {
		placement: { preferences: [{ spread: "node.labels.zone" }, { spread: "node.labels.rack" }] },
	};
	const r = schedule(tasks("db", 8, spec), set);
	const byRack: Record<string, number> = {};
	for (const n of r.assignments.values()) {
		const l = set.get(n)!.node.labels;
		byRack[`${l.zone}/${l.rack}`] = (byRack[`${l.zone}/${l.rack}`] ?? 0) + 1;
	}
	t.same(byRack, { "a/r1": 2, "a/r2": 2, "b/r1": 2, "b/r2": 2 });
	t.same([...perNode(r.assignments).values()], Array(8).fill(1));
});

t.test("tasks already placed count: new replicas go where the service has fewest", async (t) => {
	const set = new NodeSet(zoned({ a: 2, b: 2, c: 2 }));
	set.addTask("a1", { id: "old1", serviceId: "web", spec: spreadZone });
	set.addTask("a2", { id: "old2", serviceId: "web", spec: spreadZone });
	const r = schedule(tasks("web", 4, spreadZone), set);
	t.same(perZone(set, r.assignments), { b: 2, c: 2 }, "zone a already has 2");
	t.equal(r.assignments.size, 4);
	const again = schedule([{ id: "old1", serviceId: "web", spec: spreadZone }, ...tasks("web", 4, spreadZone)], set);
	t.equal(again.assignments.get("old1"), "a1", "a task the set has on a node stays there");
	t.equal(set.get("a1")?.serviceTasks("web"), 1, "and is not counted twice");
	t.same(
		[...again.assignments].filter(([id]) => id !== "old1"),
		[...r.assignments],
		"tasks the first batch placed are reported where they are, not placed again",
	);
	t.equal(set.get("b1")!.serviceTasks("web") + set.get("b2")!.serviceTasks("web"), 2, "zone b still has 2");
});

t.test("a node without the spread label is its own branch (the empty value)", async (t) => {
	const set = new NodeSet([...zoned({ a: 2, b: 2 }), node("nolabel1"), node("nolabel2")]);
	const r = schedule(tasks("web", 6, spreadZone), set);
	t.same(perZone(set, r.assignments), { a: 2, b: 2, "": 2 });
});

t.test("reservations run out: the rest is pending with the reason", async (t) => {
	const set = new NodeSet([
		node("n1", { resources: { nanoCpus: 2 * CPU, memoryBytes: 8 * GB } }),
		node("n2", { resources: { nanoCpus: 2 * CPU, memoryBytes: 8 * GB } }),
	]);
	const spec: SchedTaskSpec = { resources: { reservations: { nanoCpus: CPU, memoryBytes: GB } } };
	const r = schedule(tasks("cpu", 5, spec), set);
	t.equal(r.assignments.size, 4, "2 per node");
	t.same(Object.fromEntries(perNode(r.assignments)), { n1: 2, n2: 2 });
	t.equal(r.pending.size, 1);
	t.equal(r.pending.get("cpu.5"), "no suitable node (insufficient resources on 2 nodes)");
	t.equal(set.get("n1")?.available.nanoCpus, 0);
	set.removeTask("cpu.1");
	const retry = schedule(tasks("cpu", 5, spec).slice(4), set);
	t.equal(retry.assignments.get("cpu.5"), set.nodeOf("cpu.5"), "placed once a task frees its reservation");
	t.equal(retry.pending.size, 0);
});

t.test("arm64-only image: only on the arm64 node; pending with the reason once it is drained", async (t) => {
	const arm = node("arm", { platform: { os: "linux", architecture: "arm64" } });
	const set = new NodeSet([node("x1"), node("x2"), arm]);
	const armOnly: SchedTaskSpec = { placement: { platforms: [{ os: "linux", architecture: "arm64" }] } };
	const r = schedule(tasks("a", 3, armOnly), set);
	t.same(Object.fromEntries(perNode(r.assignments)), { arm: 3 });
	const multi: SchedTaskSpec = {
		placement: {
			platforms: [
				{ os: "linux", architecture: "amd64" },
				{ os: "linux", architecture: "arm64" },
			],
		},
	};
	t.equal(
		perNode(schedule(tasks("m", 3, multi), set).assignments).size,
		3,
		"positive control: multi-arch lands anywhere",
	);
	set.addNode({ ...arm, availability: "drain" });
	const drained = schedule([{ id: "a.4", serviceId: "a", spec: armOnly }], set);
	t.equal(drained.assignments.size, 0);
	t.equal(
		drained.pending.get("a.4"),
		"no suitable node (2 nodes lack platform linux/arm64; 1 node not available for new tasks)",
	);
	set.addNode({ ...node("x1"), availability: "drain" });
	set.addNode({ ...node("x2"), availability: "drain" });
	set.addNode(node("x3"));
	const issue = schedule([{ id: "a.5", serviceId: "a", spec: armOnly }], set);
	t.equal(
		issue.pending.get("a.5"),
		"no suitable node (3 nodes not available for new tasks; 1 node lacks platform linux/arm64)",
		"the issue's wording",
	);
	set.addNode(arm);
	t.equal(schedule([{ id: "a.5", serviceId: "a", spec: armOnly }], set).assignments.get("a.5"), "arm", "active again");
});

t.test("max replicas per node: at most the limit on each node, the rest pending", async (t) => {
	const set = new NodeSet([node("n1"), node("n2"), node("n3")]);
	const spec: SchedTaskSpec = { placement: { maxReplicasPerNode: 2 } };
	const r = schedule(tasks("w", 7, spec), set);
	t.same(Object.fromEntries(perNode(r.assignments)), { n1: 2, n2: 2, n3: 2 });
	t.equal(r.pending.get("w.7"), "no suitable node (max replicas per node limit exceed)");
});

t.test("host-mode ports: one task per node and port; a node using it already is skipped", async (t) => {
	const set = new NodeSet([node("n1"), node("n2"), node("n3")]);
	set.addTask("n2", { id: "other.1", serviceId: "other", spec: { hostPorts: [{ protocol: "tcp", port: 8080 }] } });
	const spec: SchedTaskSpec = { hostPorts: [{ protocol: "tcp", port: 8080 }] };
	const r = schedule(tasks("web", 3, spec), set);
	t.same([...r.assignments.values()].sort(), ["n1", "n3"]);
	t.equal(r.pending.get("web.3"), "no suitable node (host-mode port already in use on 3 nodes)");
	const udp = schedule(tasks("dns", 3, { hostPorts: [{ protocol: "udp", port: 8080 }] }), set);
	t.equal(udp.assignments.size, 3, "positive control: udp/8080 is free everywhere");
});

t.test("constraints with spread; a constraint nobody satisfies gives its reason", async (t) => {
	const set = new NodeSet([
		...zoned({ a: 2, b: 2 }).map((n) => ({ ...n, labels: { ...n.labels, tier: "web" } })),
		node("db1", { labels: { zone: "a", tier: "db" } }),
		node("mgr", { role: "manager", labels: { zone: "b", tier: "web" } }),
	]);
	const spec: SchedTaskSpec = {
		placement: {
			constraints: ["node.labels.tier==web", "node.role!=manager"],
			preferences: [{ spread: "node.labels.zone" }],
		},
	};
	const r = schedule(tasks("web", 4, spec), set);
	t.same(Object.fromEntries(perNode(r.assignments)), { a1: 1, a2: 1, b1: 1, b2: 1 }, "not on db1 nor mgr");
	const none = schedule(tasks("gpu", 2, { placement: { constraints: ["node.labels.gpu==yes"] } }), set);
	t.equal(none.pending.get("gpu.1"), "no suitable node (scheduling constraints not satisfied on 6 nodes)");
	t.equal(none.pending.get("gpu.2"), none.pending.get("gpu.1"), "every task of the group gets it");
});

t.test("no nodes at all: 'no suitable node'", async (t) => {
	const r = schedule(tasks("w", 1), new NodeSet());
	t.equal(r.pending.get("w.1"), "no suitable node");
});

t.test("invariants on a random cluster: every placement passed the filters; grouping changes nothing", async (t) => {
	let seed = 7;
	const rand = () => {
		seed = (seed * 1103515245 + 12345) & 0x7fffffff;
		return seed / 0x7fffffff;
	};
	const nodes: SchedNode[] = Array.from({ length: 60 }, (_, i) =>
		node(`n${i}`, {
			ready: rand() > 0.1,
			availability: rand() > 0.1 ? "active" : "drain",
			labels: { zone: `z${Math.floor(rand() * 4)}`, tier: rand() > 0.5 ? "web" : "db" },
			platform: { os: "linux", architecture: rand() > 0.7 ? "arm64" : "amd64" },
			resources: { nanoCpus: Math.floor(1 + rand() * 4) * CPU, memoryBytes: 4 * GB },
		}),
	);
	const specs: SchedTaskSpec[] = [
		{
			placement: { preferences: [{ spread: "node.labels.zone" }] },
			resources: { reservations: { nanoCpus: CPU / 2 } },
		},
		{ placement: { constraints: ["node.labels.tier==web"], maxReplicasPerNode: 2 } },
		{ placement: { platforms: [{ os: "linux", architecture: "arm64" }] }, hostPorts: [{ protocol: "tcp", port: 80 }] },
		{ resources: { reservations: { memoryBytes: GB } } },
	];
	const all: SchedTask[] = specs.flatMap((spec, s) => tasks(`s${s}`, 80, spec));
	const a = new NodeSet(nodes);
	const ra = schedule(all, a);
	const b = new NodeSet(nodes);
	const rb = schedule(all, b, { grouping: "task" });
	t.same(
		Object.fromEntries(perNode(ra.assignments)),
		Object.fromEntries(perNode(rb.assignments)),
		"same load per node",
	);
	t.equal(ra.assignments.size + ra.pending.size, all.length, "every task assigned or pending");
	t.ok(ra.pending.size > 0 && ra.assignments.size > 0, "the workload has both outcomes");
	// Replay the placements in order on a fresh set: each one must pass every filter at its time.
	const replay = new NodeSet(nodes);
	const p = new Pipeline();
	let bad = 0;
	for (const task of all) {
		const at = ra.assignments.get(task.id);
		if (at === undefined) continue;
		p.setTask(task);
		if (!p.process(replay.get(at)!)) bad++;
		replay.addTask(at, task);
	}
	t.equal(bad, 0, "no placement broke a filter");
	for (const n of replay)
		t.ok(n.available.nanoCpus >= 0 && n.available.memoryBytes >= 0, `${n.node.id} not overbooked`);
	// A pending task really fits nowhere.
	for (const [id] of ra.pending) {
		const task = all.find((x) => x.id === id)!;
		p.setTask(task);
		t.notOk(
			[...a].some((n) => p.process(n)),
			`${id} fits no node`,
		);
	}
	// The unconstrained spec spreads evenly over the nodes that take it.
	const s3 = [...ra.assignments].filter(([id]) => id.startsWith("s3.")).map(([, n]) => n);
	const counts = [...perNode(new Map(s3.map((n, i) => [String(i), n]))).values()];
	t.ok(Math.max(...counts) - Math.min(...counts) <= 1, `even spread of s3: ${counts}`);
});

t.test("validatePlacement refuses bad specs with named errors", async (t) => {
	t.doesNotThrow(
		() =>
			validatePlacement({
				placement: {
					constraints: ["node.labels.zone==a"],
					preferences: [{ spread: "node.labels.zone" }],
					maxReplicasPerNode: 2,
					platforms: [{ os: "linux", architecture: "arm64", variant: "v8" }],
				},
				resources: { reservations: { nanoCpus: CPU, memoryBytes: GB } },
				hostPorts: [{ protocol: "tcp", port: 80 }],
			}),
		"positive control: a full valid spec",
	);
	t.throws(() => validatePlacement({ placement: { constraints: ["node.role=worker"] } }), InvalidConstraintError);
	const bad: [SchedTaskSpec, RegExp][] = [
		[{ placement: { preferences: [{ spread: "node.hostname" }] } }, /spread "node\.hostname"/],
		[{ placement: { maxReplicasPerNode: -1 } }, /max replicas per node -1/],
		[{ placement: { maxReplicasPerNode: 1.5 } }, /max replicas per node 1\.5/],
		[{ placement: { platforms: [{ os: "linux", architecture: "arm 64" }] } }, /platform/],
		[{ resources: { reservations: { nanoCpus: -1 } } }, /reservation nanoCpus -1/],
		[{ hostPorts: [{ protocol: "tcp", port: 70000 }] }, /host port/],
		[{ hostPorts: [{ protocol: "icmp" as "tcp", port: 1 }] }, /host port/],
		[
			{
				hostPorts: [
					{ protocol: "tcp", port: 80 },
					{ protocol: "tcp", port: 80 },
				],
			},
			/tcp\/80 published twice/,
		],
	];
	for (const [spec, why] of bad) {
		const err = t.throws(() => validatePlacement(spec), InvalidPlacementError) as unknown as InvalidPlacementError;
		t.equal(err?.code, "ERR_INVALID_PLACEMENT");
		t.match(err?.message, why);
	}
});

t.test("NodeSet accounting: a task moved leaves its old node, a re-described node keeps its tasks", async (t) => {
	const set = new NodeSet([node("n1"), node("n2")]);
	const spec: SchedTaskSpec = {
		resources: { reservations: { nanoCpus: CPU } },
		hostPorts: [{ protocol: "tcp", port: 80 }],
	};
	set.addTask("n1", { id: "t1", serviceId: "s", spec });
	set.addTask("n2", { id: "t1", serviceId: "s", spec });
	t.equal(set.nodeOf("t1"), "n2");
	t.equal(set.get("n1")!.activeTasks, 0, "gone from n1");
	t.equal(set.get("n1")!.available.nanoCpus, 4 * CPU, "n1's reservation released");
	t.equal(set.get("n1")!.usedHostPorts.size, 0, "n1's host port released");
	t.equal(set.get("n2")!.serviceTasks("s"), 1);
	set.addNode(node("n2", { resources: { nanoCpus: 2 * CPU, memoryBytes: GB } }));
	t.equal(set.get("n2")!.available.nanoCpus, CPU, "new resources minus the task's reservation");
	t.equal(set.get("n2")!.activeTasks, 1, "its task stays");
	t.ok(set.removeNode("n2"));
	t.equal(set.nodeOf("t1"), undefined, "a removed node's tasks are forgotten");
	t.notOk(set.addTask("gone", { id: "t2", serviceId: "s", spec }), "no such node");
});
