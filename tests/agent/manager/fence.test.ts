// agent/manager/fence.ts: a manager left out by a recovery obeys the recovered leader's fence only
// when it names this cluster, comes from the server that ran the recovery, and is the later
// recovery (of two, the later one stands).
import t from "tap";
import { checkFence, FenceRefusedError } from "../../../agent/manager/index.ts";
import { CLUSTER_ID, type Cluster } from "../../../agent/store/index.ts";

const cluster = (recovery?: Cluster["recovery"]): Cluster => ({
	id: CLUSTER_ID,
	clusterId: "c-1",
	addrPools: ["198.19.0.0/16"],
	subnetSize: 24,
	nextVni: 4096,
	createdAt: "2026-12-01T00:00:00.000Z",
	...(recovery ? { recovery } : {}),
});
const storeOf = (c?: Cluster) => ({
	get: ((table: string, id: string) =>
		table === "cluster" && id === CLUSTER_ID && c ? { id, version: 1, value: c } : undefined) as never,
});
const at = new Date(Date.now() - 60_000).toISOString();
const fence = { clusterId: "c-1", at, by: "n1-id" };

t.test("the recovered leader's fence is obeyed", async (t) => {
	t.same(checkFence(storeOf(cluster()), "c-1", fence, "n1-id"), fence);
	const older = new Date(Date.now() - 3_600_000).toISOString();
	t.same(
		checkFence(storeOf(cluster({ at: older, by: "n2-id", removed: ["n1-id"] })), "c-1", fence, "n1-id"),
		fence,
		"also over an older recovery this replica knows",
	);
});

t.test("refused: another cluster, a relayed fence, an older or equal recovery, a bad time", async (t) => {
	const refused = (c: Cluster | undefined, f: Record<string, unknown>, from: string, why: RegExp, what: string) =>
		t.throws(() => checkFence(storeOf(c), "c-1", f, from), { name: FenceRefusedError.name, message: why }, what);
	refused(cluster(), { ...fence, clusterId: "c-2" }, "n1-id", /not this cluster/, "another cluster's");
	t.same(
		checkFence(storeOf(undefined), "c-1", fence, "n1-id"),
		fence,
		"a replica that has not applied its cluster record yet obeys (the agent knows its cluster)",
	);
	refused(cluster(), fence, "n3-id", /sent by n3-id, not by the server that recovered/, "relayed by another server");
	refused(
		cluster({ at: new Date().toISOString(), by: "n2-id", removed: ["n1-id"] }),
		fence,
		"n1-id",
		/knows a recovery as recent/,
		"this replica ran a later recovery itself",
	);
	refused(cluster({ at, by: "n2-id", removed: [] }), fence, "n1-id", /as recent/, "an equal one");
	refused(cluster(), { ...fence, at: "yesterday" }, "n1-id", /bad recovery time/, "a time that does not parse");
	refused(
		cluster(),
		{ ...fence, at: new Date(Date.now() + 3_600_000).toISOString() },
		"n1-id",
		/bad recovery time/,
		"a time an hour ahead",
	);
	refused(cluster(), { clusterId: "c-1", by: "n1-id" }, "n1-id", /needs clusterId, at and by/, "a missing field");
});
