// The sealed join keys of the cluster record: the validator refuses anything but sealed bytes in
// each field; sealed fields open only with the cluster secret, in their own field of their own
// cluster; JoinKeys writes, reads and rotates them and hands the cluster secret to managers only.
import { pack } from "msgpackr";
import t from "tap";
import { newManagerKeys, SealedDataError } from "../../../agent/keyring/index.ts";
import {
	JoinKeys,
	type LeaderRpc,
	newJoinMaterial,
	openJoinKeys,
	sealJoinMaterial,
} from "../../../agent/manager/index.ts";
import { StoreState, type Table, validateCluster } from "../../../agent/store/index.ts";
import { cluster } from "../store/fixtures.ts";

const SECRET = newManagerKeys().clusterSecret;

t.test("the cluster record's joinKeys: sealed bytes only, each field named when wrong", async (t) => {
	const m = await newJoinMaterial();
	const sealed = sealJoinMaterial(SECRET, "c1", m);
	const ok = { ...cluster(4096), joinKeys: sealed };
	t.same(validateCluster(ok), ok, "a record with sealed join keys passes");
	t.same(validateCluster(cluster(4096)), cluster(4096), "and one without (a cluster before any join keys)");
	const bad: Array<[string, unknown, string, RegExp]> = [
		["a secret in the clear", { ...sealed, worker: m.secrets.worker }, "joinKeys.worker", /must be sealed bytes/],
		["too short", { ...sealed, manager: sealed.manager.subarray(0, 20) }, "joinKeys.manager", /30 to 4096/],
		[
			"another seal version",
			{ ...sealed, signingKey: Uint8Array.of(2, ...sealed.signingKey.subarray(1)) },
			"joinKeys.signingKey",
			/seal version 1 \(got version 2\)/,
		],
		["oversized", { ...sealed, worker: new Uint8Array(5000).fill(1) }, "joinKeys.worker", /4096/],
		["a field missing", { manager: sealed.manager, worker: sealed.worker }, "joinKeys.signingKey", /is required/],
		["an unknown field", { ...sealed, extra: sealed.worker }, "joinKeys.extra", /not a known field/],
	];
	for (const [what, joinKeys, field, why] of bad)
		t.throws(
			() => validateCluster({ ...cluster(4096), joinKeys }),
			{ code: "ERR_INVALID_OBJECT", field, message: why },
			what,
		);
	// The refusal names the field, never its value.
	try {
		validateCluster({ ...cluster(4096), joinKeys: { ...sealed, worker: m.secrets.worker } });
	} catch (err) {
		t.notMatch((err as Error).message, m.secrets.worker, "the clear value is not in the error");
	}
	// Nothing of the clear material is in the sealed record's bytes.
	const bytes = Buffer.from(pack(ok));
	t.notOk(
		bytes.includes(Buffer.from(m.secrets.worker)) || bytes.includes(Buffer.from(m.secrets.manager)),
		"no secret in the record's bytes",
	);
	t.notOk(bytes.includes(Buffer.from(m.signingKey.raw.subarray(0, 32))), "nor the signing key's seed");
	t.ok(
		Buffer.from(pack({ s: m.secrets.worker })).includes(Buffer.from(m.secrets.worker)),
		"(positive control: a clear one would be found)",
	);
});

t.test("sealed fields open with the cluster secret, in their own field and cluster only", async (t) => {
	const m = await newJoinMaterial();
	const sealed = sealJoinMaterial(SECRET, "c1", m);
	const opened = openJoinKeys(SECRET, "c1", sealed);
	t.same(opened.secrets, m.secrets, "the secrets come back");
	t.same(opened.signingKey.raw, m.signingKey.raw, "and the signing key");
	t.throws(
		() => openJoinKeys(newManagerKeys().clusterSecret, "c1", sealed),
		SealedDataError,
		"another secret: refused",
	);
	t.throws(
		() => openJoinKeys(SECRET, "c2", sealed),
		{ message: /tsswarm-join-keys-1:c2:signingKey/ },
		"another cluster: refused",
	);
	t.throws(
		() => openJoinKeys(SECRET, "c1", { ...sealed, manager: sealed.worker, worker: sealed.manager }),
		{ code: "ERR_SEALED_DATA", message: /:manager could not be opened/ },
		"the worker's sealed secret moved to the manager field does not open there",
	);
});

/** An in-memory store (the real tables and validators) and a leader RPC that runs here. */
function harness(o: { keys?: boolean; roles?: Record<string, "manager" | "worker"> } = {}) {
	const state = new StoreState();
	let index = 0;
	const apply = (ops: Parameters<StoreState["apply"]>[0]["ops"]) => {
		const r = state.apply({ ops }, ++index);
		if ("error" in r) throw r.error;
		return { index, versions: [] };
	};
	apply([{ op: "create", table: "cluster", id: "cluster", value: cluster(4096) }]);
	const handlers = new Map<string, Parameters<LeaderRpc["register"]>[1]>();
	const keys = o.keys === false ? undefined : newManagerKeys(SECRET);
	const j = new JoinKeys({
		store: {
			get: <T extends Table>(table: T, id: string) => state.get(table, id),
			barrier: async () => {},
			appliedIndex: () => index,
			commit: async (ops) => apply(ops),
			waitForApplied: async () => {},
		},
		rpc: {
			register: (kind, h) => void handlers.set(kind, h),
			call: (kind, body) => handlers.get(kind)!(body, "self"),
		},
		directory: { isManager: (id) => o.roles?.[id] === "manager" },
		clusterId: "c1",
		logger: { info() {}, warn() {}, error() {}, debug() {} },
		keys: () => keys,
	});
	return { j, state, ask: (kind: string, from: string) => handlers.get(kind)!({}, from) };
}

t.test("JoinKeys: create, read, rotate one role; the cluster secret to managers only", async (t) => {
	const { j, state, ask } = harness({ roles: { m2: "manager", w1: "worker" } });
	t.notOk(j.ready(), "no join keys yet: not admitting");
	t.throws(() => j.material(), { code: "ERR_NO_JOIN_KEYS" });
	await j.create();
	t.ok(j.ready(), "ready once the store holds them");
	const first = j.material();
	const stored = state.get("cluster", "cluster")!.value.joinKeys!;
	t.ok(stored.worker instanceof Uint8Array, "stored sealed");
	t.notOk(Buffer.from(pack(stored)).includes(Buffer.from(first.secrets.worker)), "not in the clear");
	await j.rotate("worker");
	const next = j.material();
	t.not(next.secrets.worker, first.secrets.worker, "rotation replaces the worker secret");
	t.equal(next.secrets.manager, first.secrets.manager, "and leaves the manager's");
	t.same(next.signingKey.raw, first.signingKey.raw, "and the signing key");
	// Migration writes only when there are none (the first writer wins).
	await j.store(await newJoinMaterial(), { ifMissing: true });
	t.equal(j.material().secrets.worker, next.secrets.worker, "ifMissing leaves existing keys alone");

	const given = (await ask("keys.clusterSecret", "m2")) as { clusterSecret: Uint8Array };
	t.same(given.clusterSecret, SECRET, "a manager gets the cluster secret");
	await t.rejects(ask("keys.clusterSecret", "w1"), { code: "ERR_NOT_MANAGER_PEER" }, "a worker is refused");
	await t.rejects(ask("keys.clusterSecret", "stranger"), { code: "ERR_NOT_MANAGER_PEER" }, "so is an unknown peer");
});

t.test("a manager without the cluster secret neither admits nor hands it on", async (t) => {
	const { j, ask } = harness({ keys: false, roles: { m2: "manager" } });
	t.notOk(j.ready());
	await t.rejects(j.create(), { code: "ERR_NO_JOIN_KEYS" }, "cannot seal without the secret");
	await t.rejects(j.rotate("worker"), { code: "ERR_NO_JOIN_KEYS" }, "nor rotate");
	await t.rejects(ask("keys.clusterSecret", "m2"), { code: "ERR_NO_JOIN_KEYS" }, "nor give what it does not hold");
});
