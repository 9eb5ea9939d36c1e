// Each stored object's validator: a valid one passes as is, each bad field is refused with
// InvalidObjectError naming that field, and the FSM refuses such a write on every manager alike.
import { pack } from "msgpackr";
import t, { type Test } from "tap";
import {
	StoreFSM,
	validateCluster,
	validateNetwork,
	validateNode,
	validateService,
	validateTask,
	validateTransaction,
} from "../../../agent/store/index.ts";
import { cluster, net, node, service, task } from "./fixtures.ts";

type Case = [string, (v: Record<string, unknown>) => void, string];

/** Applies each mutation to a fresh valid object and expects the named field in the error. */
function refuses(t: Test, kind: string, make: () => object, validate: (raw: unknown) => unknown, cases: Case[]): void {
	const ok = make();
	t.same(validate(ok), ok, `a valid ${kind} passes unchanged`);
	for (const [what, mutate, field] of cases) {
		const v = structuredClone(ok) as Record<string, unknown>;
		mutate(v);
		t.throws(
			() => validate(v),
			{
				name: "InvalidObjectError",
				code: "ERR_INVALID_OBJECT",
				field,
				message: new RegExp(`^invalid ${kind}: ${field.replace(/[.[\]]/g, "\\$&")} `),
			},
			`${kind}: ${what} → names ${field}`,
		);
	}
}

type O = Record<string, unknown>;
const at = (v: O, path: string): O => path.split(".").reduce((o, k) => o[k] as O, v);

t.test("node: the agreed join shape passes, each bad field is named", async (t) => {
	refuses(
		t,
		"node",
		() => node("peer1", { labels: { zone: "a" }, platform: { os: "linux", architecture: "arm64", variant: "v8" } }),
		validateNode,
		[
			["no hostname", (v) => delete v.hostname, "hostname"],
			["role admin", (v) => (v.role = "admin"), "role"],
			["availability off", (v) => (v.availability = "off"), "availability"],
			["addr without port", (v) => (v.addr = "198.18.0.1"), "addr"],
			["label not a string", (v) => (at(v, "labels").zone = 3), "labels.zone"],
			["platform without os", (v) => delete at(v, "platform").os, "platform.os"],
			["negative memory", (v) => (at(v, "resources").memoryBytes = -1), "resources.memoryBytes"],
			["fractional cpus", (v) => (at(v, "resources").nanoCpus = 0.5), "resources.nanoCpus"],
			["createdAt not a time", (v) => (v.createdAt = "yesterday"), "createdAt"],
			["an unknown field", (v) => (v.colour = "red"), "colour"],
			["bad status state", (v) => (v.status = { state: "sleepy", timestamp: "2025-01-01T00:00:00Z" }), "status.state"],
		],
	);
});

t.test("service: its spec (agent/services' validator, field named under spec) and update status", async (t) => {
	refuses(t, "service", () => service("s1", "web"), validateService, [
		["a bad name", (v) => (at(v, "spec").name = "bad name"), "spec.name"],
		["unknown mode", (v) => (at(v, "spec").mode = { kind: "daemon" }), "spec.mode.kind"],
		["negative replicas", (v) => (at(v, "spec").mode = { kind: "replicated", replicas: -1 }), "spec.mode.replicas"],
		["no image", (v) => delete at(v, "spec.task.container").image, "spec.task.container.image"],
		[
			"relative mount target",
			(v) => (at(v, "spec.task.container").mounts = [{ type: "tmpfs", target: "b" }]),
			"spec.task.container.mounts[0].target",
		],
		["env without =", (v) => (at(v, "spec.task.container").env = ["A=1", "B"]), "spec.task.container.env[1]"],
		[
			"restart condition sometimes",
			(v) => (at(v, "spec.task").restartPolicy = { condition: "sometimes" }),
			"spec.task.restartPolicy.condition",
		],
		[
			"port 70000",
			(v) => (at(v, "spec").endpoint = { ports: [{ protocol: "tcp", targetPort: 70000, publishMode: "ingress" }] }),
			"spec.endpoint.ports[0].targetPort",
		],
		["spec not an object", (v) => (v.spec = 7), "spec"],
		["bad update state", (v) => (v.updateStatus = { state: "halfway" }), "updateStatus.state"],
		["no specVersion", (v) => delete v.specVersion, "specVersion"],
		["an unknown field", (v) => (v.colour = "red"), "colour"],
	]);
});

t.test("task: desired and observed state, attachments, slot or node, its spec copy", async (t) => {
	refuses(
		t,
		"task",
		() => task("t1", { networks: [{ networkId: "n1", addresses: ["198.19.1.5/24"], aliases: ["web"] }] }),
		validateTask,
		[
			["no serviceId", (v) => delete v.serviceId, "serviceId"],
			["no serviceName", (v) => delete v.serviceName, "serviceName"],
			["desiredState bogus", (v) => (v.desiredState = "bogus"), "desiredState"],
			["desiredState assigned (not one managers ask for)", (v) => (v.desiredState = "assigned"), "desiredState"],
			["status.state bogus", (v) => (at(v, "status").state = "bogus"), "status.state"],
			["status without timestamp", (v) => delete at(v, "status").timestamp, "status.timestamp"],
			["exit code 1.5", (v) => (at(v, "status").exitCode = 1.5), "status.exitCode"],
			[
				"address not CIDR",
				(v) => (((v.networks as O[])[0] as O).addresses = ["198.19.1.5"]),
				"networks[0].addresses[0]",
			],
			["attachment without aliases", (v) => delete ((v.networks as O[])[0] as O).aliases, "networks[0].aliases"],
			["slot 0", (v) => (v.slot = 0), "slot"],
			["neither slot nor node", (v) => delete v.slot, "slot"],
			["no image", (v) => delete v.image, "image"],
			["spec without image", (v) => delete at(v, "spec.container").image, "spec.container.image"],
			["spec not an object", (v) => (v.spec = []), "spec"],
		],
	);
	t.same(
		validateTask(task("g1", { slot: undefined, nodeId: "peer1" })).nodeId,
		"peer1",
		"a global task has a node instead of a slot",
	);
});

t.test("network and cluster records", async (t) => {
	refuses(t, "network", () => net("n1", "app"), validateNetwork, [
		["bridge driver", (v) => (v.driver = "bridge"), "driver"],
		["subnet not CIDR", (v) => (v.subnet = "300.1.0.0/24"), "subnet"],
		["gateway not an address", (v) => (v.gateway = "x"), "gateway"],
		["vni 0", (v) => (v.vni = 0), "vni"],
		["internal as string", (v) => (v.internal = "yes"), "internal"],
		["option not a string", (v) => (v.options = { mtu: 1400 }), "options.mtu"],
	]);
	refuses(t, "cluster", () => cluster(4096), validateCluster, [
		["another id", (v) => (v.id = "other"), "id"],
		["pool not CIDR", (v) => (v.addrPools = ["nope"]), "addrPools[0]"],
		["subnetSize 33", (v) => (v.subnetSize = 33), "subnetSize"],
	]);
});

t.test("the FSM refuses a malformed value (or a mismatched id) and keeps its state", async (t) => {
	const fsm = new StoreFSM();
	const entry = (index: number, ops: unknown[]) => ({ index, term: 1, type: "command" as const, data: pack({ ops }) });
	const good = fsm.apply(entry(1, [{ op: "create", table: "tasks", id: "t1", value: task("t1") }]));
	t.same(good, { ok: true, versions: [1] }, "positive control: a valid task is stored");
	const bad = fsm.apply(
		entry(2, [
			{ op: "create", table: "tasks", id: "t2", value: task("t2") },
			{ op: "update", table: "tasks", id: "t1", version: 1, value: { ...task("t1"), desiredState: "asleep" } },
		]),
	);
	t.match(bad, {
		ok: false,
		error: { code: "ERR_INVALID_OBJECT", message: /^invalid task: desiredState must be one of/ },
	});
	const mismatch = fsm.apply(entry(3, [{ op: "create", table: "tasks", id: "t3", value: task("t4") }]));
	t.match(mismatch, {
		ok: false,
		error: { code: "ERR_INVALID_OBJECT", message: /id must equal the operation's id "t3"/ },
	});
	t.equal(fsm.state.get("tasks", "t2"), undefined, "the good op of the refused transaction was not applied");
	t.equal(fsm.state.get("tasks", "t1")?.value.desiredState, "running");
	t.throws(
		() =>
			validateTransaction({ ops: [{ op: "create", table: "nodes", id: "p", value: { ...node("p"), role: "boss" } }] }),
		{ code: "ERR_INVALID_OBJECT", field: "role" },
		"the proposer gets the same error before proposing",
	);
});
