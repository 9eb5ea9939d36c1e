import t from "tap";
import {
	defaultConfig,
	InvalidMessageError,
	LeadershipLostError,
	NotLeaderError,
	RaftTimeoutError,
	validateConfig,
} from "../../../consensus/index.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";
import { put, TestCluster } from "./cluster.ts";

t.test("three servers elect a leader, replicate, and answer through futures", async (t) => {
	const c = new TestCluster();
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	const r = await leader.raft.apply(put("x", "hello"));
	t.equal(r.response, 5, "apply resolves with the FSM's response");
	t.ok(r.index > 1);
	await c.converged("x", "hello");
	await leader.raft.verifyLeader({ timeoutMs: 2000 });
	await leader.raft.barrier({ timeoutMs: 2000 });
	const follower = c.live().find((n) => n !== leader)!;
	await t.rejects(follower.raft.apply(put("y", "1")), NotLeaderError);
	await t.rejects(follower.raft.verifyLeader(), NotLeaderError);
	t.equal(follower.raft.leader()?.id, leader.id);
	const st = leader.raft.stats();
	t.equal(st.state, "leader");
	t.ok(st.commitIndex >= r.index);
});

t.test("the leader fails: a new one is elected and no acknowledged write is lost", async (t) => {
	const c = new TestCluster();
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const first = await c.leader();
	for (let i = 0; i < 20; i++) await first.raft.apply(put(`k${i}`, `v${i}`));
	await c.stop(first.id);
	const second = await c.leader();
	t.not(second.id, first.id);
	await second.raft.apply(put("after", "failover"));
	for (let i = 0; i < 20; i++) t.equal(second.fsm.map.get(`k${i}`), `v${i}`);
	await c.converged("after", "failover");
});

t.test("group commit: many concurrent applies share fsyncs on durable stores", async (t) => {
	const dir = tempDir("raft-shell-");
	t.teardown(dir.remove);
	const c = new TestCluster({ dir: dir.path });
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	const before = { writes: leader.logs.writes, entries: leader.logs.entries };
	const results = await Promise.all(Array.from({ length: 500 }, (_, i) => leader.raft.apply(put(`k${i}`, `v${i}`))));
	t.equal(new Set(results.map((r) => r.index)).size, 500, "500 distinct indexes");
	const writes = leader.logs.writes - before.writes;
	t.equal(leader.logs.entries - before.entries, 500, "the leader persisted each entry once");
	// Each storeLogs is one fdatasync: proposals made while a write is in flight share the next one.
	t.ok(writes < 250, `500 concurrent applies cost ${writes} fsyncs on the leader`);
	t.ok(writes >= 1);
	// Eight clients, each applying one entry after another: their proposals keep meeting in flight.
	const mid = { writes: leader.logs.writes, entries: leader.logs.entries, stats: leader.raft.stats().logWrites };
	await Promise.all(
		Array.from({ length: 8 }, async (_, client) => {
			for (let i = 0; i < 40; i++) await leader.raft.apply(put(`c${client}`, `${i}`));
		}),
	);
	const w = leader.logs.writes - mid.writes;
	t.equal(leader.logs.entries - mid.entries, 320);
	t.ok(w < 320, `8 concurrent clients x 40 applies cost ${w} fsyncs on the leader`);
	t.equal(leader.raft.stats().logWrites - mid.stats, w, "stats count the same writes");
	await c.converged("k499", "v499");
});

t.test("a restarted server recovers its log from disk and catches up", async (t) => {
	const dir = tempDir("raft-shell-");
	t.teardown(dir.remove);
	const c = new TestCluster({ dir: dir.path, config: { snapshotThreshold: 50, trailingLogs: 10 } });
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	const victim = c.live().find((n) => n !== leader)!;
	await leader.raft.apply(put("before", "1"));
	await c.converged("before", "1");
	await c.stop(victim.id);
	for (let i = 0; i < 200; i++) await leader.raft.apply(put(`k${i % 7}`, `v${i}`));
	t.ok(leader.raft.stats().lastSnapshotIndex > 0, "the leader took snapshots and compacted");
	const again = await c.start(victim.id);
	await c.converged("k3", "v199".replace("199", String(199 - ((199 - 3) % 7))));
	t.equal(again.fsm.map.get("before"), "1", "state from before the restart is there");
	t.ok(again.raft.stats().snapshotsInstalled >= 1, "it caught up through an InstallSnapshot from the leader");
	t.ok(leader.raft.stats().snapshotsSent >= 1, "the leader sent it");
	t.ok(again.raft.stats().lastSnapshotIndex > 0);
});

t.test("membership: add a non-voter, promote it, demote and remove a voter", async (t) => {
	const c = new TestCluster();
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	await c.start("d");
	await leader.raft.addNonvoter("d", "d", { timeoutMs: 5000 });
	await leader.raft.apply(put("seen-by-d", "yes"));
	await c.converged("seen-by-d", "yes", ["d"]);
	t.equal(leader.raft.configuration().servers.find((s) => s.id === "d")?.suffrage, "nonvoter");
	await leader.raft.addVoter("d", "d", { timeoutMs: 5000 });
	t.equal(leader.raft.configuration().servers.find((s) => s.id === "d")?.suffrage, "voter");
	const other = c.live().find((n) => n !== leader && n.id !== "d")!;
	await leader.raft.demoteVoter(other.id, { timeoutMs: 5000 });
	await leader.raft.removeServer(other.id, { timeoutMs: 5000 });
	t.same(
		leader.raft
			.configuration()
			.servers.map((s) => s.id)
			.sort(),
		["a", "b", "c", "d"].filter((id) => id !== other.id).sort(),
	);
	await c.stop(other.id);
	await leader.raft.apply(put("quorum", "still"), { timeoutMs: 5000 });
});

t.test("leadership transfer and futures that time out or lose leadership", async (t) => {
	const c = new TestCluster();
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	const next = await leader.raft.leadershipTransfer(undefined, { timeoutMs: 5000 });
	t.not(next, leader.id);
	const now = await c.leader();
	t.equal(now.id, next);
	// Cut the leader off: its pending apply can neither commit nor be kept waiting forever.
	c.net.isolate(now.id);
	const stuck = now.raft.apply(put("lost?", "1"), { timeoutMs: 1 });
	const lost = now.raft.apply(put("lost?", "2"));
	await t.rejects(stuck, RaftTimeoutError, "a deadline ends the wait");
	await t.rejects(lost, LeadershipLostError, "check-quorum deposes it and its futures fail");
	await t.rejects(now.raft.apply(put("lost?", "3")), NotLeaderError, "then it refuses new ones");
	c.net.heal();
	await c.leader();
});

t.test("garbage and forged messages are dropped and reported, the node keeps running", async (t) => {
	const c = new TestCluster();
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	const target = c.live().find((n) => n !== leader)!;
	const seen: string[] = [];
	const kinds: string[] = [];
	target.raft.on("invalid-message", ({ peer, error }) => {
		seen.push(`${peer}: ${error.message}`);
		kinds.push(`${peer} ${error instanceof InvalidMessageError ? error.code : error.name}`);
	});
	const tr = c.net.transport("mallory");
	await tr.start({ onMessage() {} });
	tr.send(target.id, target.id, "not even an object");
	tr.send(target.id, target.id, { type: "append", term: 99, from: "mallory", to: target.id, prevIndex: -1 });
	tr.send(target.id, target.id, { type: "heartbeat", term: 99, from: leader.id, to: target.id, commit: 0, ctx: 0 });
	await waitFor("three refusals", () => seen.length >= 3);
	t.match(seen.join("\n"), /not an object/);
	t.match(seen.join("\n"), /claims to be from/);
	t.same(kinds, Array(3).fill("mallory ERR_INVALID_MESSAGE"), "named errors with a stable code, and the peer");
	await leader.raft.apply(put("still", "fine"));
	await c.converged("still", "fine");
	t.equal(leader.raft.state(), "leader", "the forged higher term did not depose anyone");
	// A stale term (an old leader's delayed heartbeat) is counted, answered and dropped.
	const stale = target.raft.stats().staleMessages;
	tr.send(target.id, target.id, { type: "heartbeat", term: 1, from: "mallory", to: target.id, commit: 99, ctx: 0 });
	await waitFor("the stale heartbeat counted", () => target.raft.stats().staleMessages > stale);
	t.ok(target.raft.stats().commitIndex < 99, "it moved nothing");
	t.equal(target.raft.leader()?.id, leader.id, "the follower still follows the leader");
});

t.test("validateConfig names the bad setting", async (t) => {
	t.throws(() => validateConfig({ ...defaultConfig("a"), tickMs: 0 }), /tickMs must be a positive integer/);
	t.throws(() => validateConfig({ ...defaultConfig("a"), electionTicks: 2, heartbeatTicks: 2 }), /at least twice/);
	t.throws(() => validateConfig({ ...defaultConfig("") }), /localId/);
});

t.test("a snapshot records the configuration as of its index, not a later committed one", async (t) => {
	const c = new TestCluster({ config: { snapshotThreshold: 3 } });
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	const slow = c.live().find((n) => n !== leader)!;
	// Hold the follower in the middle of applying entry 3 (the first command).
	let release = () => {};
	slow.fsm.gate = new Promise<void>((r) => {
		release = r;
	});
	await leader.raft.apply(put("x", "1"));
	await waitFor("the follower is applying entry 3", () => slow.fsm.heldAt === 3);
	// Meanwhile a membership change commits (entry 4) and the follower learns that commit.
	await leader.raft.addNonvoter("d", "d", { timeoutMs: 5000 });
	await leader.raft.apply(put("y", "2"));
	await waitFor("the follower's commit passed the change", () => slow.raft.stats().commitIndex >= 4);
	slow.fsm.gate = undefined;
	release();
	await waitFor("the follower snapshotted at 3", async () => (await slow.snaps.list()).some((m) => m.index === 3));
	const meta = (await slow.snaps.list()).find((m) => m.index === 3)!;
	t.same(meta.configuration.servers.map((s) => s.id).sort(), ["a", "b", "c"], "no d yet at index 3");
	t.equal(meta.configurationIndex, 1);
	await c.converged("y", "2");
});

t.test("events: peer observations on membership changes, heartbeat failures to a stopped peer", async (t) => {
	const c = new TestCluster();
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	const peers: string[] = [];
	leader.raft.on("peer", (p) => peers.push(`${p.id}:${p.suffrage}:${p.removed ? "removed" : "in"}`));
	await c.start("d");
	await leader.raft.addNonvoter("d", "d", { timeoutMs: 5000 });
	await leader.raft.removeServer("d", { timeoutMs: 5000 });
	t.same(peers, ["d:nonvoter:in", "d:nonvoter:removed"]);
	const failed = new Set<string>();
	leader.raft.on("heartbeat-failed", ({ peer, error }) => {
		if (error instanceof Error) failed.add(peer);
	});
	const victim = c.live().find((n) => n !== leader && n.id !== "d")!;
	await c.stop(victim.id);
	await waitFor("a failed heartbeat to the stopped peer", () => failed.has(victim.id));
	t.notOk(failed.has(leader.id));
});

t.test("futures honour signals: aborted before the call, snapshot and shutdown take options", async (t) => {
	const c = new TestCluster();
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	const aborted = AbortSignal.abort(new Error("caller gave up"));
	await t.rejects(leader.raft.verifyLeader({ signal: aborted }), /caller gave up/);
	await t.rejects(leader.raft.snapshot({ signal: aborted }), /caller gave up/);
	await t.rejects(leader.raft.addVoter("z", "z", { signal: aborted }), /caller gave up/);
	t.same(
		leader.raft
			.configuration()
			.servers.map((s) => s.id)
			.sort(),
		["a", "b", "c"],
		"the aborted change did nothing",
	);
	const r = await leader.raft.apply(put("k", "v"));
	await Promise.all(c.live().map((n) => n.raft.waitForApplied(r.index, { timeoutMs: 5000 })));
	t.ok(
		c.live().every((n) => n.fsm.map.get("k") === "v"),
		"waitForApplied resolved once each node applied it",
	);
	const meta = await leader.raft.snapshot({ timeoutMs: 5000 });
	t.ok(meta && meta.index >= r.index);
	await leader.raft.shutdown({ timeoutMs: 5000 });
	t.equal(leader.raft.state(), "shutdown");
});

t.test("a membership change right after an election waits for the leader's first commit", async (t) => {
	const c = new TestCluster();
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const first = await c.leader();
	await c.start("d");
	// Depose the leader and ask the next one for a change the moment it takes over.
	const changed = new Promise<number>((resolve, reject) => {
		for (const n of c.live()) {
			if (n === first || n.id === "d") continue;
			n.raft.on("state", (s) => {
				if (s === "leader") n.raft.addNonvoter("d", "d", { timeoutMs: 5000 }).then(resolve, reject);
			});
		}
	});
	await first.raft.leadershipTransfer(undefined, { timeoutMs: 5000 });
	const index = await changed;
	t.ok(index > 0, "accepted once allowed, not refused with ConfigChangePendingError");
	const now = await c.leader();
	t.equal(now.raft.configuration().servers.find((s) => s.id === "d")?.suffrage, "nonvoter");
});

t.test("a failing disk stops the server instead of letting it lie; its futures fail with the cause", async (t) => {
	const c = new TestCluster();
	t.teardown(() => c.shutdown());
	await c.bootstrap(["a", "b", "c"]);
	const leader = await c.leader();
	await leader.raft.apply(put("before", "1"));
	const broken = new Error("EIO: the disk went away");
	leader.logs.storeLogs = () => Promise.reject(broken);
	await t.rejects(leader.raft.apply(put("after", "1")), /shut down|disk went away/);
	await waitFor("the leader stopped", () => leader.raft.state() === "shutdown");
	await t.rejects(leader.raft.apply(put("later", "1")), broken, "later calls name the storage failure");
	const next = await c.leader();
	t.not(next.id, leader.id, "the others elect a new leader");
	await next.raft.apply(put("still", "works"), { timeoutMs: 5000 });
});
