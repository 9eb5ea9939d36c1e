// A seeded property test of the in-place store: random transactions (a third of them failing part
// way) must leave the same tables as the pre-change full-copy algorithm, and every index (names,
// tasks by service/node/desired state, nodes by role) must equal a brute-force scan, also after a
// snapshot round trip.
import t, { type Test } from "tap";
import {
	DESIRED_STATES,
	type IndexedTable,
	type IndexName,
	type Op,
	type StoredRecord,
	StoreState,
	TABLES,
	type TableTypes,
	validateTransaction,
} from "../../../agent/store/index.ts";
import { FullCopyBaseline } from "../../../bench/store/full-copy.ts";
import { net, node, service, task } from "./fixtures.ts";

/** mulberry32: small, seeded, reproducible. */
function rng(seed: number) {
	let a = seed >>> 0;
	const next = () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let x = Math.imul(a ^ (a >>> 15), 1 | a);
		x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
		return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
	};
	return {
		next,
		int: (n: number) => Math.floor(next() * n),
		pick: <X>(xs: readonly X[]): X => xs[Math.floor(next() * xs.length)]!,
	};
}

const INDEXES: { [T in IndexedTable]: Array<[IndexName<T>, (r: StoredRecord<TableTypes[T]>) => string | undefined]> } =
	{
		tasks: [
			["serviceId", (r) => r.value.serviceId],
			["nodeId", (r) => r.value.nodeId],
			["desiredState", (r) => r.value.desiredState],
		],
		nodes: [
			["role", (r) => r.value.role],
			["availability", (r) => r.value.availability],
		],
	};

const sortIds = (rs: Array<{ id: string }>) => rs.map((r) => r.id).sort();

function checkIndexes(t: Test, s: StoreState, label: string): boolean {
	let ok = true;
	const same = (a: unknown, b: unknown, what: string) => {
		if (JSON.stringify(a) !== JSON.stringify(b)) {
			ok = false;
			t.same(a, b, `${label}: ${what}`);
		}
	};
	const check = <T extends IndexedTable>(table: T) => {
		const all = s.list(table);
		for (const [by, key] of INDEXES[table]) {
			const keys = new Set([...all.map(key).filter((k) => k !== undefined), "absent-key"]);
			for (const k of keys)
				same(
					sortIds(s.find(table, { by, value: k })),
					sortIds(all.filter((r) => key(r) === k)),
					`${table} by ${by}=${k}`,
				);
			const counts = new Map<string, number>();
			for (const r of all) {
				const k = key(r);
				if (k !== undefined) counts.set(k, (counts.get(k) ?? 0) + 1);
			}
			same([...s.keys(table, by)].sort(), [...counts].sort(), `${table} ${by} key counts`);
		}
	};
	check("tasks");
	check("nodes");
	for (const name of NAMES) {
		const svc = s.list("services").filter((r) => r.value.spec.name === name);
		same(s.byName("services", name)?.id, svc[0]?.id, `service named ${name}`);
		const nw = s.list("networks").filter((r) => r.value.name === name);
		same(s.byName("networks", name)?.id, nw[0]?.id, `network named ${name}`);
	}
	return ok;
}

const NAMES = ["web", "db", "cache", "api", "queue"];
const SERVICES = ["s1", "s2", "s3", "s4"];
const NODES = ["p1", "p2", "p3"];

function randomOp(r: ReturnType<typeof rng>, s: StoreState, index: number): Op {
	const kind = r.int(10);
	// Mostly the right version; sometimes a stale one, so the transaction fails there.
	const version = (cur: { version: number } | undefined) => (r.next() < 0.04 ? index + 5 : (cur?.version ?? 1));
	// What to do with a record: mostly what can succeed, sometimes what cannot.
	const what = (exists: boolean) => {
		const c = r.next();
		if (exists) return c < 0.7 ? "update" : c < 0.93 ? "delete" : "create";
		return c < 0.93 ? "create" : c < 0.97 ? "update" : "delete";
	};
	if (kind < 6) {
		const id = `t${r.int(40)}`;
		const cur = s.get("tasks", id);
		const global = r.next() < 0.3;
		const value = task(id, {
			serviceId: r.pick(SERVICES),
			slot: global ? undefined : 1 + r.int(5),
			nodeId: global || r.next() < 0.5 ? r.pick(NODES) : undefined,
			desiredState: r.pick(DESIRED_STATES),
		});
		const w = what(cur !== undefined);
		if (w === "create") return { op: "create", table: "tasks", id, value };
		if (w === "update") return { op: "update", table: "tasks", id, version: version(cur), value };
		return r.next() < 0.5
			? { op: "delete", table: "tasks", id }
			: { op: "delete", table: "tasks", id, version: version(cur) };
	}
	if (kind < 8) {
		const id = r.pick(["sv1", "sv2", "sv3", "sv4"]);
		const cur = s.get("services", id);
		// Mostly keep the name (renames collide often with five names).
		const value = service(id, cur && r.next() < 0.7 ? cur.value.spec.name : r.pick(NAMES));
		const w = what(cur !== undefined);
		if (w === "create") return { op: "create", table: "services", id, value };
		if (w === "update") return { op: "update", table: "services", id, version: version(cur), value };
		return { op: "delete", table: "services", id };
	}
	if (kind < 9) {
		const id = r.pick(NODES);
		const cur = s.get("nodes", id);
		const value = node(id, {
			role: r.pick(["manager", "worker"] as const),
			availability: r.pick(["active", "pause", "drain"] as const),
		});
		const w = what(cur !== undefined);
		if (w === "create") return { op: "create", table: "nodes", id, value };
		if (w === "update") return { op: "update", table: "nodes", id, version: version(cur), value };
		return { op: "delete", table: "nodes", id };
	}
	const id = r.pick(["n1", "n2", "n3"]);
	const cur = s.get("networks", id);
	const value = net(id, cur && r.next() < 0.7 ? cur.value.name : r.pick(NAMES));
	const w = what(cur !== undefined);
	if (w === "create") return { op: "create", table: "networks", id, value };
	if (w === "update") return { op: "update", table: "networks", id, version: version(cur), value };
	return { op: "delete", table: "networks", id };
}

t.test("indexes equal a brute-force scan after random transactions, failed ones included", async (t) => {
	const SEEDS = 12;
	const TXS = 400;
	let failed = 0;
	let applied = 0;
	for (let seed = 1; seed <= SEEDS; seed++) {
		const r = rng(seed);
		let s = new StoreState();
		const model = new FullCopyBaseline();
		for (let i = 1; i <= TXS; i++) {
			const ops = Array.from({ length: 1 + r.int(4) }, () => randomOp(r, s, i));
			const res = s.apply(validateTransaction({ ops }), i);
			const want = model.apply(ops, i);
			const got = "error" in res ? res.error.code : undefined;
			if (got) failed++;
			else applied++;
			if (got !== want) {
				t.equal(got, want, `seed ${seed} tx ${i}: same outcome as the full-copy algorithm`);
				return;
			}
			for (const table of TABLES) {
				const a = s.list(table).sort((x, y) => x.id.localeCompare(y.id));
				const b = [...model.tables.get(table)!.values()].sort((x, y) => x.id.localeCompare(y.id));
				if (JSON.stringify(a) !== JSON.stringify(b)) {
					t.same(a, b, `seed ${seed} tx ${i}: ${table} equals the full-copy algorithm's`);
					return;
				}
			}
			if (!checkIndexes(t, s, `seed ${seed} tx ${i}`)) return;
			if (i % 100 === 0) {
				s = StoreState.fromSnapshot(structuredClone(s.toSnapshot()));
				if (!checkIndexes(t, s, `seed ${seed} tx ${i} after a snapshot round trip`)) return;
			}
		}
	}
	t.ok(failed > SEEDS * TXS * 0.2, `many transactions failed and were undone (${failed})`);
	t.ok(applied > SEEDS * TXS * 0.2, `many applied (${applied})`);
});

t.test("a failed transaction's earlier ops leave no trace in any index", async (t) => {
	const s = new StoreState();
	s.apply(
		validateTransaction({
			ops: [{ op: "create", table: "tasks", id: "a", value: task("a", { serviceId: "s1", nodeId: "p1" }) }],
		}),
		1,
	);
	const r = s.apply(
		validateTransaction({
			ops: [
				{
					op: "update",
					table: "tasks",
					id: "a",
					version: 1,
					value: task("a", { serviceId: "s2", nodeId: "p2", desiredState: "shutdown" }),
				},
				{ op: "create", table: "tasks", id: "b", value: task("b", { serviceId: "s2", nodeId: "p2" }) },
				{ op: "delete", table: "tasks", id: "a" },
				{ op: "create", table: "services", id: "x", value: service("x", "web") },
				{ op: "delete", table: "tasks", id: "missing" },
			],
		}),
		2,
	);
	t.ok("error" in r && r.error.code === "ERR_NOT_FOUND", "the last op fails");
	t.same(sortIds(s.find("tasks", { by: "serviceId", value: "s1" })), ["a"], "a is back under s1");
	t.same(s.find("tasks", { by: "serviceId", value: "s2" }), [], "nothing under s2");
	t.same(s.find("tasks", { by: "nodeId", value: "p2" }), [], "nothing on p2");
	t.same(sortIds(s.find("tasks", { by: "desiredState", value: "running" })), ["a"]);
	t.equal(s.byName("services", "web"), undefined, "the name web is free again");
	t.equal(s.get("tasks", "a")?.version, 1);
	// Positive control: the same writes without the failing op stick.
	const ok = s.apply(
		validateTransaction({
			ops: [
				{ op: "update", table: "tasks", id: "a", version: 1, value: task("a", { serviceId: "s2", nodeId: "p2" }) },
				{ op: "create", table: "services", id: "x", value: service("x", "web") },
			],
		}),
		3,
	);
	t.notOk("error" in ok);
	t.same(sortIds(s.find("tasks", { by: "nodeId", value: "p2" })), ["a"]);
	t.equal(s.byName("services", "web")?.id, "x");
});
