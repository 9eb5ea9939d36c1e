import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { RaftError, SnapshotChecksumError, type SnapshotRequest } from "../../../consensus/index.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";
import { put, TestCluster } from "./cluster.ts";

const big = (i: number) => `${i}:${"v".repeat(4000)}`;

t.test("a snapshot far larger than the transport's message bound streams in chunks", async (t) => {
	const c = new TestCluster({
		config: { snapshotThreshold: 20, trailingLogs: 5, snapshotChunkBytes: 8 << 10, maxAppendBytes: 16 << 10 },
	});
	c.net.maxMessageBytes = 32 << 10;
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	const slow = c.live().find((n) => n !== leader)!;
	await c.stop(slow.id);
	for (let i = 0; i < 60; i++) await leader.raft.apply(put(`k${i}`, big(i)));
	t.ok(leader.raft.stats().lastSnapshotIndex > 40, "the leader compacted past what the follower has");
	const again = await c.start(slow.id, { reuse: true });
	await c.converged("k59", big(59));
	const st = again.raft.stats();
	t.ok(st.snapshotsInstalled >= 1, "caught up through InstallSnapshot");
	t.ok(
		st.snapshotChunksReceived > 20,
		`in ${st.snapshotChunksReceived} chunks (the state is ~240 KB, the bound 32 KB)`,
	);
	for (let i = 0; i < 60; i++) if (again.fsm.map.get(`k${i}`) !== big(i)) t.fail(`k${i} differs`);
});

t.test("a snapshot corrupted in flight is refused with SnapshotChecksumError, then resent", async (t) => {
	const c = new TestCluster({ config: { snapshotThreshold: 20, trailingLogs: 5, snapshotChunkBytes: 4 << 10 } });
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	const slow = c.live().find((n) => n !== leader)!;
	await c.stop(slow.id);
	for (let i = 0; i < 40; i++) await leader.raft.apply(put(`k${i}`, big(i)));
	let tampered = 0;
	c.net.tamper = (_from, to, msg) => {
		const m = msg as SnapshotRequest;
		if (to !== slow.id || m.type !== "snapshot" || m.offset !== 4096 || tampered > 0) return msg;
		tampered++;
		const data = new Uint8Array(m.data!);
		data[7]! ^= 0x01;
		return { ...m, data };
	};
	const refusals: Error[] = [];
	const again = await c.start(slow.id, { reuse: true });
	again.raft.on("invalid-message", ({ peer, error }) => {
		if (peer === leader.id) refusals.push(error);
	});
	await c.converged("k39", big(39));
	t.equal(tampered, 1);
	t.equal(refusals.length, 1, "the corrupted snapshot was refused once");
	t.ok(refusals[0] instanceof SnapshotChecksumError, "with SnapshotChecksumError");
	t.equal((refusals[0] as SnapshotChecksumError).code, "ERR_SNAPSHOT_CHECKSUM");
	t.ok(again.raft.stats().snapshotsInstalled >= 1, "the resent one was installed");
	t.ok(leader.raft.stats().snapshotsSent >= 2);
});

async function durableWithSnapshots(dir: string, trailingLogs: number) {
	const c = new TestCluster({ dir, config: { snapshotThreshold: 10, trailingLogs } });
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	for (let i = 0; i < 35; i++) await leader.raft.apply(put(`k${i}`, `v${i}`));
	const f = c.live().find((n) => n !== leader)!;
	await c.converged("k34", "v34");
	await waitFor("two snapshots on the follower", async () => (await f.snaps.list()).length === 2);
	const snaps = await f.snaps.list();
	await c.stop(f.id);
	// Flip a byte in the newest snapshot's state.
	const sdir = join(dir, f.id, "snapshots");
	const newest = readdirSync(sdir).sort().reverse()[0]!;
	const p = join(sdir, newest, "state.bin");
	const b = readFileSync(p);
	b[3]! ^= 0xff;
	writeFileSync(p, b);
	return { c, leader, f, older: snaps[1]! };
}

t.test("on start a corrupt newest snapshot falls back to an older retained one", async (t) => {
	const dir = tempDir("raft-snap-");
	t.teardown(dir.remove);
	const { c, leader, f, older } = await durableWithSnapshots(dir.path, 100);
	t.teardown(() => c.shutdown());
	const again = await c.start(f.id);
	t.equal(again.raft.stats().startSnapshotIndex, older.index, "restored the older snapshot");
	await leader.raft.apply(put("after", "restart"));
	await c.converged("after", "restart");
	for (let i = 0; i < 35; i++) t.equal(again.fsm.map.get(`k${i}`), `v${i}`);
});

t.test("when no readable snapshot reaches the log, start refuses with a named error", async (t) => {
	const dir = tempDir("raft-snap-");
	t.teardown(dir.remove);
	const { c, f } = await durableWithSnapshots(dir.path, 0);
	t.teardown(() => c.shutdown());
	const err = await c.start(f.id).then(
		() => undefined,
		(e: unknown) => e,
	);
	t.ok(err instanceof RaftError);
	t.equal((err as RaftError).code, "ERR_SNAPSHOT_GAP");
	t.match((err as Error).message, /does not reach the log/);
});
