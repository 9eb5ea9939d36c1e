// Each filter alone (check and explain), platform normalisation as docker does it, and the
// pipeline's reason strings as `service ps` shows them (most frequent refusal first).
import t from "tap";
import {
	AvailabilityFilter,
	ConstraintFilter,
	type Filter,
	HostPortFilter,
	MaxReplicasFilter,
	NodeSet,
	normalizePlatform,
	Pipeline,
	PlatformFilter,
	platformSatisfies,
	ReadyFilter,
	ResourceFilter,
	type SchedTask,
	type SchedTaskSpec,
} from "../../../../agent/manager/scheduler/index.ts";
import { CPU, GB, node } from "./fixtures.ts";

const task = (spec: SchedTaskSpec = {}, id = "t1", serviceId = "s1"): SchedTask => ({ id, serviceId, spec });

t.test("ready: a down node refuses; explain counts nodes", async (t) => {
	const set = new NodeSet([node("up"), node("down", { ready: false })]);
	const f = new ReadyFilter();
	t.ok(f.setTask(task()), "applies to every task");
	t.ok(f.check(set.get("up")!));
	t.notOk(f.check(set.get("down")!));
	t.equal(f.explain(1), "1 node not ready");
	t.equal(f.explain(3), "3 nodes not ready");
});

t.test("availability: only active nodes take new tasks", async (t) => {
	const set = new NodeSet([node("a"), node("p", { availability: "pause" }), node("d", { availability: "drain" })]);
	const f = new AvailabilityFilter();
	t.ok(f.setTask(task()));
	t.ok(f.check(set.get("a")!));
	t.notOk(f.check(set.get("p")!), "pause");
	t.notOk(f.check(set.get("d")!), "drain");
	t.equal(f.explain(1), "1 node not available for new tasks");
	t.equal(f.explain(2), "2 nodes not available for new tasks");
});

t.test("resources: reservations against what assigned tasks left", async (t) => {
	const set = new NodeSet([node("n", { resources: { nanoCpus: 2 * CPU, memoryBytes: 4 * GB } })]);
	const f = new ResourceFilter();
	t.notOk(f.setTask(task()), "no reservation: filter off");
	const want: SchedTaskSpec = { resources: { reservations: { nanoCpus: CPU, memoryBytes: GB } } };
	t.ok(f.setTask(task(want)));
	const n = set.get("n")!;
	t.ok(f.check(n), "fits an empty node");
	set.addTask("n", task(want, "x1"));
	t.ok(f.check(n), "1 of 2 cpus used: still fits");
	set.addTask("n", task(want, "x2"));
	t.equal(n.available.nanoCpus, 0);
	t.notOk(f.check(n), "both cpus reserved");
	set.removeTask("x2");
	t.ok(f.check(n), "freed again when a task goes");
	t.ok(f.setTask(task({ resources: { reservations: { memoryBytes: 3 * GB } } })), "memory alone enables it");
	t.ok(f.check(n), "exactly the 3 GiB left (4 GiB - 1 GiB reserved) fits");
	f.setTask(task({ resources: { reservations: { memoryBytes: 3 * GB + 1 } } }));
	t.notOk(f.check(n), "one byte more does not");
	t.equal(f.explain(1), "insufficient resources on 1 node");
	t.equal(f.explain(2), "insufficient resources on 2 nodes");
});

t.test("platform: os/arch/variant as docker matches them", async (t) => {
	const set = new NodeSet([
		node("amd", { platform: { os: "linux", architecture: "x86_64" } }),
		node("arm64", { platform: { os: "linux", architecture: "aarch64" } }),
		node("armv7", { platform: { os: "linux", architecture: "arm", variant: "v7" } }),
		node("armv6", { platform: { os: "linux", architecture: "armel" } }),
		node("win", { platform: { os: "windows", architecture: "amd64" } }),
	]);
	const f = new PlatformFilter();
	t.notOk(f.setTask(task()), "no platform list: fits anywhere (filter off)");
	t.notOk(f.setTask(task({ placement: { platforms: [] } })), "empty list: fits anywhere");
	const fits = (platforms: SchedTaskSpec["placement"] & object) => {
		f.setTask(task({ placement: platforms }));
		return [...set].filter((n) => f.check(n)).map((n) => n.node.id);
	};
	t.same(fits({ platforms: [{ os: "linux", architecture: "arm64" }] }), ["arm64"], "arm64 only on arm64");
	t.same(
		fits({ platforms: [{ os: "linux", architecture: "arm64", variant: "v8" }] }),
		["arm64"],
		"v8 is arm64's default",
	);
	t.same(fits({ platforms: [{ os: "linux", architecture: "amd64" }] }), ["amd"], "x86_64 is amd64; os counts");
	t.same(fits({ platforms: [{ os: "linux", architecture: "arm", variant: "v6" }] }), ["armv7", "armv6"], "v7 runs v6");
	t.same(fits({ platforms: [{ os: "linux", architecture: "arm" }] }), ["armv7"], "arm means arm/v7: not on v6");
	t.same(
		fits({
			platforms: [
				{ os: "linux", architecture: "amd64" },
				{ os: "linux", architecture: "arm64" },
			],
		}),
		["amd", "arm64"],
		"a multi-arch image fits each of its platforms",
	);
	t.same(fits({ platforms: [{ os: "", architecture: "" }] }), ["amd", "arm64", "armv7", "armv6", "win"], "blank: any");
	f.setTask(task({ placement: { platforms: [{ os: "linux", architecture: "aarch64" }] } }));
	t.equal(f.explain(1), "1 node lacks platform linux/arm64");
	t.equal(f.explain(4), "4 nodes lack platform linux/arm64");
	f.setTask(
		task({
			placement: {
				platforms: [
					{ os: "linux", architecture: "amd64" },
					{ os: "linux", architecture: "arm", variant: "v7" },
				],
			},
		}),
	);
	t.equal(f.explain(2), "2 nodes lack platform linux/amd64 or linux/arm/v7");
	t.ok(
		platformSatisfies(
			normalizePlatform({ os: "linux", architecture: "amd64", variant: "v2" }),
			normalizePlatform({ os: "linux", architecture: "amd64", variant: "v3" }),
		),
		"amd64/v3 runs v2",
	);
	t.notOk(
		platformSatisfies(
			normalizePlatform({ os: "linux", architecture: "amd64", variant: "v3" }),
			normalizePlatform({ os: "linux", architecture: "amd64" }),
		),
		"plain amd64 (v1) does not run v3",
	);
});

t.test("constraints: all must hold; a bad one refuses every node with its error", async (t) => {
	const set = new NodeSet([node("a", { labels: { zone: "a" } }), node("b", { labels: { zone: "b" } })]);
	const f = new ConstraintFilter();
	t.notOk(f.setTask(task()), "no constraints: filter off");
	t.ok(f.setTask(task({ placement: { constraints: ["node.labels.zone==a", "node.role==worker"] } })));
	t.ok(f.check(set.get("a")!));
	t.notOk(f.check(set.get("b")!));
	t.equal(f.explain(1), "scheduling constraints not satisfied on 1 node");
	t.equal(f.explain(5), "scheduling constraints not satisfied on 5 nodes");
	t.ok(f.setTask(task({ placement: { constraints: ["node.zone=a"] } })));
	t.notOk(f.check(set.get("a")!), "an unparsable constraint (slipped past validation) matches nothing");
	t.match(f.explain(2), /^invalid constraint "node\.zone=a": expected one operator .* \(2 nodes\)$/);
});

t.test("host ports: a node whose tasks publish that port/protocol refuses", async (t) => {
	const set = new NodeSet([node("n"), node("m")]);
	const f = new HostPortFilter();
	t.notOk(f.setTask(task()), "no host ports: filter off");
	const web: SchedTaskSpec = { hostPorts: [{ protocol: "tcp", port: 80 }] };
	set.addTask("n", task(web, "w1"));
	t.ok(f.setTask(task(web, "w2")));
	t.notOk(f.check(set.get("n")!), "tcp/80 taken on n");
	t.ok(f.check(set.get("m")!), "free on m");
	f.setTask(task({ hostPorts: [{ protocol: "udp", port: 80 }] }, "u1"));
	t.ok(f.check(set.get("n")!), "udp/80 is another port");
	set.removeTask("w1");
	f.setTask(task(web, "w2"));
	t.ok(f.check(set.get("n")!), "released when the task goes");
	t.equal(f.explain(1), "host-mode port already in use on 1 node");
	t.equal(f.explain(3), "host-mode port already in use on 3 nodes");
});

t.test("max replicas per node: counts the service's tasks on the node", async (t) => {
	const set = new NodeSet([node("n")]);
	const f = new MaxReplicasFilter();
	t.notOk(f.setTask(task()), "no limit: filter off");
	const spec: SchedTaskSpec = { placement: { maxReplicasPerNode: 2 } };
	t.ok(f.setTask(task(spec, "t9")));
	const n = set.get("n")!;
	set.addTask("n", task(spec, "t1"));
	set.addTask("n", task({}, "other", "s2"));
	t.ok(f.check(n), "1 of 2, another service's task does not count");
	set.addTask("n", task(spec, "t2"));
	t.notOk(f.check(n), "2 of 2");
	t.equal(f.explain(4), "max replicas per node limit exceed");
});

t.test("pipeline: first refusal counts, reasons most frequent first", async (t) => {
	const set = new NodeSet([
		node("d1", { availability: "drain" }),
		node("d2", { availability: "drain", platform: { os: "linux", architecture: "arm64" } }),
		node("x86"),
		node("down", { ready: false }),
	]);
	const p = new Pipeline();
	p.setTask(task({ placement: { platforms: [{ os: "linux", architecture: "arm64" }] } }));
	for (const n of set) p.process(n);
	t.equal(
		p.reason(),
		"no suitable node (2 nodes not available for new tasks; 1 node not ready; 1 node lacks platform linux/arm64)",
	);
	p.setTask(task());
	t.equal(p.reason(), "no suitable node", "nothing counted after setTask: no parenthesis");
	t.same(
		[...set].map((n) => p.process(n)),
		[false, false, true, false],
		"positive control: the x86 node passes a task with no platform",
	);
	const calls: string[] = [];
	const spy = (name: string, applies: boolean, ok: boolean): Filter => ({
		name,
		setTask: () => applies,
		check: () => {
			calls.push(name);
			return ok;
		},
		explain: (n) => `${name}:${n}`,
	});
	const q = new Pipeline([
		spy("off", false, false),
		spy("a", true, true),
		spy("b", true, false),
		spy("c", true, false),
	]);
	q.setTask(task());
	t.notOk(q.process(set.get("x86")!));
	t.same(calls, ["a", "b"], "a filter that does not apply is skipped; the first refusal stops the run");
	t.equal(q.explain(), "b:1");
});
