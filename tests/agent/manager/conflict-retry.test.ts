// A leader's commit that loses an optimistic-concurrency race rejects with the store's own class
// (VersionConflictError), so the read-modify-write loops (leave, node update, join keys,
// autopilot settings) read again instead of failing: CI once lost a leader's `leave` to this.
import t from "tap";
import { removeLeaver } from "../../../agent/manager/index.ts";
import { type ClusterStore, VersionConflictError } from "../../../agent/store/index.ts";
import { oneManager } from "../../helpers/manager.ts";
import { node } from "../store/fixtures.ts";

t.test("a stale update rejects with VersionConflictError (status 409), nothing written", async (t) => {
	const { m } = await oneManager(t, "tsswarm-conflict-");
	const s = m.store;
	const { versions } = await s.commit([{ op: "create", table: "nodes", id: "nx", value: node("nx") }]);
	const v1 = versions[0]!;
	await s.commit([{ op: "update", table: "nodes", id: "nx", version: v1, value: node("nx", { labels: { a: "1" } }) }]);
	const err = await s
		.commit([{ op: "update", table: "nodes", id: "nx", version: v1, value: node("nx", { labels: { b: "2" } }) }])
		.then(
			() => undefined,
			(e: unknown) => e,
		);
	t.ok(err instanceof VersionConflictError, `the class is the store's own (got ${String(err)})`);
	t.equal((err as VersionConflictError).code, "ERR_VERSION_CONFLICT");
	t.equal((err as VersionConflictError).status, 409);
	t.same(s.get("nodes", "nx")?.value.labels, { a: "1" }, "the newer write stands");
});

t.test("removeLeaver reads again when the leaver's record changes under it", async (t) => {
	const { m } = await oneManager(t, "tsswarm-conflict-leave-");
	const s = m.store;
	await s.commit([{ op: "create", table: "nodes", id: "leaver", value: node("leaver", { role: "manager" }) }]);
	// The first commit removeLeaver makes is overtaken by another write to the same record (as a
	// status report or autopilot's reason would be on a live leader).
	let raced = 0;
	const racing = new Proxy(s, {
		get(target, prop, recv) {
			if (prop !== "commit") return Reflect.get(target, prop, recv);
			return async (...args: Parameters<ClusterStore["commit"]>) => {
				if (raced++ === 0) {
					const cur = target.get("nodes", "leaver")!;
					const value = { ...cur.value, labels: { zone: "b" } };
					await target.commit([{ op: "update", table: "nodes", id: "leaver", version: cur.version, value }]);
				}
				return target.commit(...args);
			};
		},
	});
	const r = await removeLeaver(racing, "leaver");
	t.ok(raced >= 2, `it committed again after the conflict (${raced} commits)`);
	const rec = s.get("nodes", "leaver")!;
	t.equal(rec.value.role, "worker", "the leaver's record is a worker's");
	t.equal(rec.value.desiredRole, "worker");
	t.same(rec.value.labels, { zone: "b" }, "and the concurrent write is kept");
	t.equal(r.index, rec.version, "the index returned is the write's");
});
