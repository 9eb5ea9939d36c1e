// setNodeAddr, the leader's write when a node is back on a new address: only addr changes (the
// rest of the record, its labels and availability, stays), an unchanged address writes nothing,
// and a malformed address or an unknown node is refused by name.
import t from "tap";
import { setNodeAddr } from "../../../agent/manager/nodes.ts";
import { cluster } from "../dispatch/fixtures.ts";

t.test("setNodeAddr: the record follows the node's address, nothing else changes", async (t) => {
	const { ws, store } = await cluster(t, 1);
	const id = ws[0].h.peerId;
	const before = store.get("nodes", id)!;
	await store.commit([
		{
			op: "update",
			table: "nodes",
			id,
			version: before.version,
			value: { ...before.value, labels: { zone: "a" }, availability: "drain" },
		},
	]);
	const index = await setNodeAddr(store, id, "198.18.1.9:2377");
	t.ok(typeof index === "number", "a write");
	const after = store.get("nodes", id)!.value;
	t.equal(after.addr, "198.18.1.9:2377", "the new address");
	t.same(after.labels, { zone: "a" }, "labels kept");
	t.equal(after.availability, "drain", "availability kept");
	t.equal(after.createdAt, before.value.createdAt, "createdAt kept");
	const v = store.get("nodes", id)!.version;
	t.equal(await setNodeAddr(store, id, "198.18.1.9:2377"), undefined, "the same address again: no write");
	t.equal(store.get("nodes", id)!.version, v, "the record's version did not move");
	await t.rejects(setNodeAddr(store, id, "198.18.1.9"), { code: "ERR_INVALID_NODE_UPDATE" }, "no port: refused");
	await t.rejects(setNodeAddr(store, id, "/ip4/1.2.3.4/tcp/1"), { code: "ERR_INVALID_NODE_UPDATE" });
	await t.rejects(
		setNodeAddr(store, "12D3KooWGzPSW1bUs2tWpA8XgD3VVQcr1Rh3kLJZ7cn5nDKfYo6e", "198.18.1.9:2377"),
		{ code: "ERR_NOT_FOUND" },
		"an unknown node: refused",
	);
	t.equal(store.get("nodes", id)!.value.addr, "198.18.1.9:2377", "the refusals changed nothing");
});
