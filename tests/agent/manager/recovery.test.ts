// The manager's disaster recovery in one process, as `init --force-new-cluster` runs it: the
// Manager stopped, started again with forceNewCluster on the same data root, its records intact,
// leading alone; an empty data root is refused and changes nothing; and the last manager cannot
// hand its vote to anyone (it is told what leaving loses).
import t from "tap";
import { Host, MemoryAllowList } from "../../../agent/host/index.ts";
import { LastManagerError, Manager } from "../../../agent/manager/index.ts";
import { NodeDirectory } from "../../../agent/nodes/index.ts";
import { RecoveryRefusedError } from "../../../consensus/index.ts";
import { tempDir } from "../../helpers/index.ts";

const noop = (_o: object, _m?: string) => {};
const quiet = { info: noop, warn: noop, error: noop, debug: noop };

t.test("a manager restarted with forceNewCluster keeps its records and leads alone", async (t) => {
	const dir = tempDir("tsswarm-recover-");
	t.teardown(dir.remove);
	const h = await Host.create({
		dataDir: dir.path,
		listen: ["/ip4/127.0.0.1/tcp/0"],
		allowList: new MemoryAllowList(),
		logger: quiet,
	});
	t.teardown(() => h.stop());
	const o = { host: h, dataRoot: dir.path, clusterId: "c1", logger: quiet, directory: new NodeDirectory() };
	let m = await Manager.start({ ...o, bootstrap: true });
	t.teardown(() => m.stop().catch(() => {}));
	await m.initCluster("c1", { addrPools: ["198.19.0.0/16"], subnetSize: 24 });
	await m.createNetwork({ name: "app" });
	const lost = m.lastManagerLoss();
	t.same(
		lost && { services: lost.services, networks: lost.networks, orphans: lost.orphans },
		{ services: 0, networks: 2, orphans: [] },
		"the only voter: leaving would lose 2 networks",
	);
	await t.rejects(m.handOffVote(2000), LastManagerError, "and it has nobody to hand its vote to");
	const index = m.store.appliedIndex();
	await m.stop();

	m = await Manager.start({ ...o, forceNewCluster: true });
	const s = await m.recoverySummary(10_000);
	t.equal(s.index, index, "recovered up to the last entry it had");
	t.same(s.kept.networks, 2, "both networks kept");
	t.same(s.removed, [], "no other server was in the configuration");
	t.ok(m.store.isLeader(), "it leads");
	t.same(
		m
			.listNetworks()
			.map((n) => n.Name)
			.sort(),
		["app", "ingress"],
	);
	await m.createNetwork({ name: "after" });
	t.equal(m.listNetworks().length, 3, "and takes a write");
	await m.stop();

	// A plain start afterwards: the recovered state is what it starts from.
	m = await Manager.start(o);
	await m.store.waitForLeader(10_000);
	await m.store.barrier(); // the log after the recovery snapshot is applied again once it leads
	t.same(
		m
			.listNetworks()
			.map((n) => n.Name)
			.sort(),
		["after", "app", "ingress"],
		"restarted, everything is there",
	);
});

t.test("forceNewCluster on a data root with no Raft state is refused; a normal start still works", async (t) => {
	const dir = tempDir("tsswarm-recover-empty-");
	t.teardown(dir.remove);
	const h = await Host.create({
		dataDir: dir.path,
		listen: ["/ip4/127.0.0.1/tcp/0"],
		allowList: new MemoryAllowList(),
		logger: quiet,
	});
	t.teardown(() => h.stop());
	const o = { host: h, dataRoot: dir.path, clusterId: "c1", logger: quiet, directory: new NodeDirectory() };
	const err = await Manager.start({ ...o, forceNewCluster: true }).catch((e: Error) => e);
	t.ok(err instanceof RecoveryRefusedError, `refused: ${(err as Error).message}`);
	const m = await Manager.start({ ...o, bootstrap: true });
	t.teardown(() => m.stop());
	await m.initCluster("c1", { addrPools: ["198.19.0.0/16"], subnetSize: 24 });
	t.equal(m.listNetworks().length, 1, "control: the same data root then bootstraps as usual");
});
