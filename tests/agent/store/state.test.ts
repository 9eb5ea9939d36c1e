// The store's tables and its Raft FSM, without Raft: whole-or-nothing transactions, versions,
// unique names, refusal of malformed entries (state unchanged), snapshot and restore.
import { pack } from "msgpackr";
import t from "tap";
import { StoreFSM, StoreState, validateTransaction } from "../../../agent/store/index.ts";
import type { LogEntry } from "../../../consensus/index.ts";
import { cluster, net } from "./fixtures.ts";

const entry = (index: number, tx: unknown): LogEntry => ({ index, term: 1, type: "command", data: pack(tx) });

t.test("transactions apply whole or not at all, with versions = raft index", async (t) => {
	const s = new StoreState();
	const r1 = s.apply(
		validateTransaction({
			ops: [
				{ op: "create", table: "networks", id: "n1", value: net("n1", "app") },
				{ op: "create", table: "cluster", id: "cluster", value: cluster(1) },
			],
		}),
		7,
	);
	t.notOk("error" in r1);
	t.equal(s.get("networks", "n1")?.version, 7);
	t.equal(s.get("networks", "n1")?.createdIndex, 7);
	// Second op fails (stale version): the first must not stick.
	const r2 = s.apply(
		validateTransaction({
			ops: [
				{ op: "create", table: "networks", id: "n2", value: net("n2", "db") },
				{ op: "update", table: "cluster", id: "cluster", version: 6, value: cluster(2) },
			],
		}),
		8,
	);
	t.ok("error" in r2 && r2.error.code === "ERR_VERSION_CONFLICT", "stale version refused");
	t.equal(s.get("networks", "n2"), undefined, "the create in the same transaction was not applied");
	t.same(s.get("cluster", "cluster")?.value, cluster(1));
	const r3 = s.apply(
		validateTransaction({
			ops: [{ op: "update", table: "cluster", id: "cluster", version: 7, value: cluster(2) }],
		}),
		9,
	);
	t.notOk("error" in r3);
	t.equal(s.get("cluster", "cluster")?.version, 9);
	t.equal(s.get("cluster", "cluster")?.createdIndex, 7);
});

t.test("names are unique per named table; deletes check existence and version", async (t) => {
	const s = new StoreState();
	s.apply(validateTransaction({ ops: [{ op: "create", table: "networks", id: "a", value: net("a", "app") }] }), 1);
	const dup = s.apply(
		validateTransaction({ ops: [{ op: "create", table: "networks", id: "b", value: net("b", "app") }] }),
		2,
	);
	t.ok("error" in dup && dup.error.code === "ERR_NAME_IN_USE");
	const sameId = s.apply(
		validateTransaction({ ops: [{ op: "create", table: "networks", id: "a", value: net("a", "x") }] }),
		3,
	);
	t.ok("error" in sameId && sameId.error.code === "ERR_VERSION_CONFLICT");
	const gone = s.apply(validateTransaction({ ops: [{ op: "delete", table: "networks", id: "zz" }] }), 4);
	t.ok("error" in gone && gone.error.code === "ERR_NOT_FOUND");
	const stale = s.apply(validateTransaction({ ops: [{ op: "delete", table: "networks", id: "a", version: 9 }] }), 5);
	t.ok("error" in stale && stale.error.code === "ERR_VERSION_CONFLICT");
	t.ok(s.byName("networks", "app"), "still there");
	const del = s.apply(validateTransaction({ ops: [{ op: "delete", table: "networks", id: "a", version: 1 }] }), 6);
	t.notOk("error" in del);
	t.equal(s.list("networks").length, 0);
});

t.test("malformed transactions are refused with a named error naming the fault", async (t) => {
	const cases: Array<[unknown, RegExp]> = [
		[null, /expected \{ ops/],
		[{ ops: [] }, /no operations/],
		[{ ops: [{ op: "upsert", table: "networks", id: "a", value: {} }] }, /unknown op "upsert"/],
		[{ ops: [{ op: "create", table: "pets", id: "a", value: {} }] }, /unknown table "pets"/],
		[{ ops: [{ op: "create", table: "nodes", id: "", value: {} }] }, /id must be a string/],
		[{ ops: [{ op: "create", table: "nodes", id: "x".repeat(129), value: {} }] }, /id must be a string/],
		[{ ops: [{ op: "create", table: "nodes", id: "a", value: [1] }] }, /value must be an object/],
		[{ ops: [{ op: "update", table: "nodes", id: "a", value: {} }] }, /needs the version/],
		[{ ops: Array.from({ length: 1025 }, () => ({ op: "delete", table: "nodes", id: "a" })) }, /more than 1024/],
	];
	for (const [tx, why] of cases) t.throws(() => validateTransaction(tx), { code: "ERR_INVALID_TX", message: why });
});

t.test("the FSM refuses garbage entries without losing state, and snapshots round-trip", async (t) => {
	const fsm = new StoreFSM();
	const events: string[] = [];
	fsm.on("change", (e) => events.push(`${e.action} ${e.table}/${e.id}`));
	t.same(fsm.apply(entry(1, { ops: [{ op: "create", table: "networks", id: "a", value: net("a", "app") }] })), {
		ok: true,
		versions: [1],
	});
	const garbage: LogEntry = { index: 2, term: 1, type: "command", data: new Uint8Array([0xc1, 0xff, 0x00]) };
	const r = fsm.apply(garbage) as { ok: boolean; error: { code: string } };
	t.equal(r.ok, false);
	t.equal(r.error.code, "ERR_INVALID_TX");
	const bad = fsm.apply(entry(3, { ops: [{ op: "create", table: "pets", id: "x", value: {} }] })) as { ok: boolean };
	t.equal(bad.ok, false);
	t.same(events, ["create networks/a"], "only the good entry announced");
	t.equal(fsm.appliedIndex, 3);

	const chunks: Uint8Array[] = [];
	const snap = await fsm.snapshot();
	await snap.persist({
		id: "s",
		write: async (c) => void chunks.push(c),
		close: async () => {},
		cancel: async () => {},
	});
	const other = new StoreFSM();
	let restored = false;
	other.on("restored", () => {
		restored = true;
	});
	await other.restore(Buffer.concat(chunks));
	t.ok(restored);
	t.same(other.state.list("networks"), fsm.state.list("networks"));
	t.equal(other.appliedIndex, 3);
	t.throws(() => other.restore(pack({ v: 99 })), { code: "ERR_SNAPSHOT_VERSION" });
	t.same(other.state.list("networks").length, 1, "a refused snapshot leaves the state as it was");
});
