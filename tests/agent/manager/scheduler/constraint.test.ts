// The constraint parser and matcher: Swarm's syntax (==, !=, dotted keys, restricted values),
// case rules (keys and values ignore case, label names do not), and the named error for bad input.
import t from "tap";
import {
	InvalidConstraintError,
	nodeMatches,
	parseConstraint,
	parseConstraints,
} from "../../../../agent/manager/scheduler/index.ts";
import { node } from "./fixtures.ts";

t.test("valid expressions parse into field, label, operator and value", async (t) => {
	t.match(parseConstraint("node.labels.zone==eu-1"), {
		field: "node.labels",
		label: "zone",
		operator: "==",
		value: "eu-1",
	});
	t.match(parseConstraint(" node.role != manager "), { field: "node.role", operator: "!=", value: "manager" });
	t.match(parseConstraint("Node.Platform.Arch==ARM64"), { field: "node.platform.arch", value: "arm64" });
	t.match(parseConstraint("engine.labels.Storage==ssd"), { field: "engine.labels", label: "Storage" });
	t.match(parseConstraint("node.hostname==web/1.example"), { field: "node.hostname", value: "web/1.example" });
	for (const k of ["node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch"]) {
		t.equal(parseConstraint(`${k}==x`).field, k, `${k} is a known key`);
	}
	t.equal(parseConstraints([]).length, 0, "no constraints is valid");
});

t.test("bad syntax is an InvalidConstraintError that says what was wrong", async (t) => {
	const cases: [string, RegExp][] = [
		["node.role", /expected one operator from ==, !=/],
		["node.role=manager", /expected one operator/],
		["node.role>=manager", /expected one operator/],
		["==manager", /key "" is invalid/],
		["node labels==x", /key "node labels" is invalid/],
		["node.role==", /value "" is invalid/],
		["node.role==a<b", /value "a<b" is invalid/],
		["node.role!==x", /key "node.role!" is invalid/],
		["node.color==red", /unknown key "node.color"/],
		["node.labels.==x", /unknown key "node.labels."/],
	];
	for (const [expr, why] of cases) {
		const err = t.throws(() => parseConstraint(expr), InvalidConstraintError, expr) as unknown as
			| InvalidConstraintError
			| undefined;
		t.equal(err?.code, "ERR_INVALID_CONSTRAINT", `${expr}: stable code`);
		t.match(err?.message, why, `${expr}: ${err?.message}`);
		t.equal(err?.expression, expr);
	}
	t.throws(() => parseConstraints(["node.role==worker", "bad"]), InvalidConstraintError, "one bad in a list");
	t.doesNotThrow(() => parseConstraints(["node.role==worker", "node.labels.a!=b"]), "positive control");
});

t.test("matching: values ignore case, label names do not, a missing label is empty", async (t) => {
	const n = node("n1", {
		hostname: "Web-1",
		role: "manager",
		labels: { zone: "EU-1", Tier: "web" },
		engineLabels: { disk: "ssd" },
		platform: { os: "linux", architecture: "arm64" },
	});
	const m = (...e: string[]) => nodeMatches(parseConstraints(e), n);
	t.ok(m("node.id==N1"), "node.id ignores case");
	t.ok(m("node.hostname==web-1"));
	t.ok(m("node.role==MANAGER"));
	t.notOk(m("node.role!=manager"));
	t.ok(m("node.platform.os==linux", "node.platform.arch==arm64"), "both constraints hold");
	t.notOk(m("node.platform.os==linux", "node.platform.arch==amd64"), "all must hold");
	t.ok(m("node.labels.zone==eu-1"), "value ignores case");
	t.ok(m("node.labels.Tier==web"));
	t.notOk(m("node.labels.tier==web"), "the label name is case-sensitive");
	t.ok(m("node.labels.tier!=web"), "a missing label is empty, so != holds");
	t.ok(m("engine.labels.disk==ssd"));
	t.notOk(m("engine.labels.disk==hdd"));
	t.ok(m("NODE.LABELS.zone==eu-1"), "the key prefix ignores case");
});
