// Disaster recovery (recoverCluster, hashicorp's RecoverCluster): a server of a cluster that lost
// its quorum is stopped, its own durable stores get a configuration naming it alone, and started
// again it elects itself with every entry it had in its state machine, takes writes and grows
// again. Workloads are seeded (RECOVERY_SEED=N replays one); each test prints its seed.
import { closeSync, ftruncateSync, openSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { unpack } from "msgpackr";
import t from "tap";
import {
	FileLogStore,
	FileSnapshotStore,
	FileStableStore,
	MemLogStore,
	MemSnapshotStore,
	MemStableStore,
	RecoveryRefusedError,
	recoverCluster,
} from "../../../consensus/index.ts";
import { tempDir } from "../../helpers/index.ts";
import { Rng } from "../sim/rng.ts";
import { KvFsm, put, TestCluster } from "./cluster.ts";

const seeds = process.env.RECOVERY_SEED ? [Number(process.env.RECOVERY_SEED)] : [20261206, 7, 1001, 424242];
const only = (id: string) => ({ servers: [{ id, address: id, suffrage: "voter" as const }] });

async function openStores(dir: string, id: string) {
	return {
		logs: await FileLogStore.open({ dir: join(dir, id, "log") }),
		stable: await FileStableStore.open(join(dir, id)),
		snaps: new FileSnapshotStore(join(dir, id, "snapshots")),
	};
}

/** A durable 3-node cluster that took `writes` seeded writes, all converged, then stopped whole. */
async function lostCluster(
	rng: Rng,
	dir: string,
	o: { writes: number; snapshotThreshold: number; trailingLogs: number },
) {
	const c = new TestCluster({
		dir,
		config: { snapshotThreshold: o.snapshotThreshold, trailingLogs: o.trailingLogs },
	});
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	const want = new Map<string, string>();
	for (let i = 0; i < o.writes; i++) {
		const key = `k${rng.int(0, Math.max(1, o.writes >> 1))}`;
		const value = `v${i}-${rng.int(0, 1e6)}`;
		await leader.raft.apply(put(key, value), { timeoutMs: 5000 });
		want.set(key, value);
	}
	const [lastKey, lastValue] = [...want].at(-1)!;
	await c.converged(lastKey, lastValue);
	const term = leader.raft.stats().term;
	await c.shutdown();
	return { c, want, term };
}

for (const seed of seeds) {
	t.test(`seed ${seed}: the survivor recovers alone with every committed entry, then grows again`, async (t) => {
		t.comment(`seed ${seed} (RECOVERY_SEED=${seed} replays it)`);
		const rng = new Rng(seed);
		const dir = tempDir("raft-recover-");
		t.teardown(dir.remove);
		const o = { writes: rng.int(10, 120), snapshotThreshold: rng.int(5, 40), trailingLogs: rng.int(0, 10) };
		t.comment(JSON.stringify(o));
		const { c, want, term } = await lostCluster(rng, dir.path, o);
		t.teardown(() => c.shutdown());
		const survivor = rng.pick(["a", "b", "c"]);

		const st = await openStores(dir.path, survivor);
		const r = await recoverCluster(new KvFsm(), st.logs, st.stable, st.snaps, only(survivor));
		await st.logs.close();
		t.same(
			r.previous.servers.map((s) => s.id).sort(),
			["a", "b", "c"],
			"it followed the 3-server configuration before",
		);
		t.equal(r.currentTerm, term, "the term is kept");
		t.ok(r.index >= o.writes + 2, `the recovery snapshot covers the whole log (index ${r.index})`);
		t.comment(`restored snapshot ${r.restoredFrom}, replayed ${r.replayed} entries (${r.commands} commands)`);

		const node = await c.start(survivor);
		const leader = await c.leader();
		t.equal(leader.id, survivor, "the survivor elects itself: it is the only voter");
		t.same(leader.raft.configuration(), only(survivor), "its configuration names it alone");
		t.ok(leader.raft.stats().term > term, "in a later term than before");
		t.same(new Map(node.fsm.map), want, `all ${want.size} keys hold their last committed value`);
		await leader.raft.apply(put("after", "recovery"), { timeoutMs: 5000 });
		t.equal(node.fsm.map.get("after"), "recovery", "it takes a new write on its own");

		// A new, empty server added as a voter catches up (snapshot or log) and counts toward commits.
		await c.start("d");
		await leader.raft.addVoter("d", "d", { timeoutMs: 5000 });
		await c.converged("after", "recovery", [survivor, "d"]);
		t.same(new Map(c.nodes.get("d")!.fsm.map), new Map(node.fsm.map), "the new voter has the whole state");
		await c.stop("d");
		const refused = await leader.raft.apply(put("x", "1"), { timeoutMs: 1500 }).then(
			() => "committed",
			(e: Error) => e.name,
		);
		t.not(refused, "committed", `control: with the new voter down, 2 voters have no quorum (${refused})`);
		await c.start("d");
		const back = await c.leader();
		await back.raft.apply(put("y", "2"), { timeoutMs: 5000 });
		await c.converged("y", "2", [survivor, "d"]);
		t.pass("the new voter back: writes commit on both again");

		// Recovered again (still no quorum issue): a second recovery of the same stores is allowed.
		await c.shutdown();
		const again = await openStores(dir.path, survivor);
		const r2 = await recoverCluster(new KvFsm(), again.logs, again.stable, again.snaps, only(survivor));
		await again.logs.close();
		t.same(
			r2.previous.servers.map((s) => s.id).sort(),
			[survivor, "d"].sort(),
			"a second recovery starts from the grown configuration",
		);
	});
}

t.test("a torn last log entry is cut at open; recovery keeps everything before it", async (t) => {
	const seed = seeds[0]!;
	t.comment(`seed ${seed}`);
	const rng = new Rng(seed);
	const dir = tempDir("raft-recover-torn-");
	t.teardown(dir.remove);
	const { c, want } = await lostCluster(rng, dir.path, { writes: 40, snapshotThreshold: 1000, trailingLogs: 10 });
	t.teardown(() => c.shutdown());
	// The survivor's last entry is the last write; tear it as a crash in its write would.
	const probe = await openStores(dir.path, "b");
	const lastIndex = await probe.logs.lastIndex();
	const last = (await probe.logs.getLog(lastIndex))!;
	await probe.logs.close();
	const { key: tornKey } = unpack(last.data) as { key: string; value: string };
	t.equal(last.type, "command", "control: the last entry of b's log is a write");
	const segDir = join(dir.path, "b", "log");
	const seg = join(
		segDir,
		readdirSync(segDir)
			.filter((n) => n.endsWith(".seg"))
			.sort()
			.at(-1)!,
	);
	const fd = openSync(seg, "r+");
	ftruncateSync(fd, statSync(seg).size - 5);
	closeSync(fd);

	const st = await openStores(dir.path, "b");
	t.ok(st.logs.recovery.tornBytes > 0, `the torn tail was cut (${st.logs.recovery.tornBytes} bytes)`);
	t.equal(await st.logs.lastIndex(), lastIndex - 1, "the torn entry is gone, the one before it is last");
	const r = await recoverCluster(new KvFsm(), st.logs, st.stable, st.snaps, only("b"));
	await st.logs.close();
	t.equal(r.index, lastIndex - 1, "recovered up to the last whole entry");
	const node = await c.start("b");
	await c.leader();
	// What b applied: every key's last value, except the torn write's (b never made it durable).
	const expected = new Map(want);
	expected.delete(tornKey);
	t.ok(
		[...expected].every(([k, v]) => node.fsm.map.get(k) === v),
		`the ${expected.size} other keys hold their values`,
	);
	t.not(node.fsm.map.get(tornKey), want.get(tornKey), "the torn write itself is not applied");
	await node.raft.apply(put("after", "torn"), { timeoutMs: 5000 });
	t.equal(node.fsm.map.get("after"), "torn", "and the recovered server takes writes");
});

t.test("recovery on a server with no state is refused, and changes nothing", async (t) => {
	const [logs, stable, snaps] = [new MemLogStore(), new MemStableStore(), new MemSnapshotStore()];
	const err = await recoverCluster(new KvFsm(), logs, stable, snaps, only("a")).catch((e: Error) => e);
	t.ok(err instanceof RecoveryRefusedError, "RecoveryRefusedError");
	t.equal((err as RecoveryRefusedError).code, "ERR_RECOVERY_REFUSED");
	t.match((err as Error).message, /no Raft state/, "saying there is nothing to recover");
	t.equal((await snaps.list()).length, 0, "no snapshot was written");
	t.equal(await logs.lastIndex(), 0);
	// Positive control: the same stores once bootstrapped (state present) recover fine.
	const { Raft } = await import("../../../consensus/index.ts");
	await Raft.bootstrap(logs, stable, only("a"));
	const r = await recoverCluster(new KvFsm(), logs, stable, snaps, only("a"));
	t.equal(r.index, 1, "control: a bootstrapped server recovers (its one configuration entry)");
});

t.test("a configuration with no voter is refused before anything is read", async (t) => {
	const [logs, stable, snaps] = [new MemLogStore(), new MemStableStore(), new MemSnapshotStore()];
	const err = await recoverCluster(new KvFsm(), logs, stable, snaps, {
		servers: [{ id: "a", address: "a", suffrage: "nonvoter" }],
	}).catch((e: Error) => e);
	t.equal((err as { code?: string }).code, "ERR_BAD_CONFIG");
});
