import t from "tap";
import {
	ConfigChangePendingError,
	defaultCoreConfig,
	InvalidMessageError,
	LeadershipTransferInProgressError,
	type Message,
	NotLeaderError,
	RaftCore,
	type SnapshotMeta,
	validateMessage,
} from "../../../consensus/index.ts";
import { cmd, Net } from "./harness.ts";

t.test("a single voter elects itself and commits alone", async (t) => {
	const net = new Net(["a"]);
	t.equal(net.electLeader(), "a");
	net.get("a").propose([cmd("x=1")]);
	net.settle();
	t.same(net.commandsApplied("a"), ["x=1"]);
});

t.test("three nodes: one leader, entries replicate and apply everywhere in order", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	const l = net.get(leader);
	for (let i = 0; i < 20; i++) l.propose([cmd(`op${i}`)]);
	net.settle();
	net.tick(2);
	const expected = Array.from({ length: 20 }, (_, i) => `op${i}`);
	for (const id of ["a", "b", "c"]) t.same(net.commandsApplied(id), expected, `${id} applied all, in order`);
	t.equal(new Set([...net.cores.values()].map((c) => c.term)).size, 1, "one term everywhere");
});

t.test("followers refuse proposals and name the leader", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	const follower = ["a", "b", "c"].find((id) => id !== leader)!;
	const err = t.throws(() => net.get(follower).propose([cmd("x")])) as NotLeaderError;
	t.ok(err instanceof NotLeaderError);
	t.equal(err.leader, leader);
});

t.test("pre-vote: a partitioned node does not inflate its term or disrupt the leader on return", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	const term = net.get(leader).term;
	const loner = ["a", "b", "c"].find((id) => id !== leader)!;
	net.isolate(loner);
	net.tick(100);
	t.equal(net.get(loner).term, term, "pre-vote kept the isolated node's term");
	net.heal();
	net.tick(5);
	t.equal(net.leaders().length, 1);
	t.equal(net.leaders()[0], leader, "the leader was not disrupted");
	t.equal(net.get(leader).term, term);
});

t.test("without pre-vote the same partition forces a new election (the control case)", async (t) => {
	const net = new Net(["a", "b", "c"], { preVote: false, checkQuorum: false });
	const leader = net.electLeader();
	const term = net.get(leader).term;
	const loner = ["a", "b", "c"].find((id) => id !== leader)!;
	net.isolate(loner);
	net.tick(100);
	t.ok(net.get(loner).term > term + 1, "the isolated node kept raising its term");
});

t.test("check-quorum: a leader cut off from the majority steps down", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	net.isolate(leader);
	net.tick(25, [leader]);
	t.equal(net.get(leader).role, "follower", "the isolated leader stepped down");
	net.heal();
	const next = net.electLeader();
	t.ok(next);
});

t.test("a deposed leader's uncommitted entries are replaced, committed ones never", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const old = net.electLeader();
	net.get(old).propose([cmd("committed")]);
	net.settle();
	net.isolate(old);
	net.get(old).propose([cmd("lost")]);
	net.settle();
	const others = ["a", "b", "c"].filter((id) => id !== old);
	net.tick(40, others);
	const fresh = net.leaders().find((id) => id !== old)!;
	t.ok(fresh, "the majority elected a new leader");
	net.get(fresh).propose([cmd("new")]);
	net.settle();
	net.heal();
	net.tick(5);
	for (const id of ["a", "b", "c"]) t.same(net.commandsApplied(id), ["committed", "new"], `${id}`);
});

t.test("leadership transfer hands over to an up-to-date voter and blocks proposals meanwhile", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	const target = ["a", "b", "c"].find((id) => id !== leader)!;
	net.get(leader).propose([cmd("before")]);
	net.settle();
	const termBefore = net.get(leader).term;
	net.cut.add(`${leader}>${target}`); // hold the transfer so proposals are tested while it is pending
	net.get(leader).transferLeadership(target);
	t.throws(() => net.get(leader).propose([cmd("during")]), LeadershipTransferInProgressError);
	net.heal();
	net.tick(1);
	net.settle();
	t.equal(net.leaders().join(), target, "the target leads now");
	t.equal(net.get(target).term, termBefore + 1, "in the next term, won without a pre-vote round");
	t.equal(net.get(leader).role, "follower", "the old leader follows");
	t.equal(net.get(leader).term, termBefore + 1);
	t.same(net.commandsApplied(target), ["before"], "the new leader has everything the old one committed");
});

t.test("membership: add a non-voter, promote it, remove a voter; one change at a time", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	const l = net.get(leader);
	net.add("d", []);
	const withD = { servers: [...l.configuration().servers, { id: "d", address: "d", suffrage: "nonvoter" as const }] };
	l.proposeConfiguration(withD);
	t.throws(
		() => l.proposeConfiguration({ servers: [...withD.servers, { id: "e", address: "e", suffrage: "voter" }] }),
		ConfigChangePendingError,
	);
	net.settle();
	net.tick(3);
	l.propose([cmd("hello d")]);
	net.settle();
	net.tick(2);
	t.same(net.commandsApplied("d"), ["hello d"], "the non-voter receives the log");
	t.throws(
		() =>
			l.proposeConfiguration({
				// Promoting d and demoting another voter in one step is two changes: refused.
				servers: withD.servers.map((s) =>
					s.id === "d"
						? { ...s, suffrage: "voter" as const }
						: s.id === ["a", "b", "c"].find((id) => id !== leader)
							? { ...s, suffrage: "nonvoter" as const }
							: s,
				),
			}),
		/one server at a time/,
	);
	l.proposeConfiguration({
		servers: withD.servers.map((s) => (s.id === "d" ? { ...s, suffrage: "voter" as const } : s)),
	});
	net.settle();
	net.tick(2);
	t.equal(
		net
			.get("d")
			.configuration()
			.servers.find((s) => s.id === "d")?.suffrage,
		"voter",
		"d is a voter",
	);
	const victim = ["a", "b", "c"].find((id) => id !== leader)!;
	l.proposeConfiguration({ servers: l.configuration().servers.filter((s) => s.id !== victim) });
	net.settle();
	net.tick(2);
	t.same(
		l
			.committedConfiguration()
			.servers.map((s) => s.id)
			.sort(),
		["a", "b", "c", "d"].filter((id) => id !== victim).sort(),
	);
	// With the victim gone, a quorum is 2 of 3: cut it off and keep committing.
	net.isolate(victim);
	l.propose([cmd("after removal")]);
	net.settle();
	t.ok(net.commandsApplied(leader).includes("after removal"));
});

t.test("a leader removing itself steps down once that is committed", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	const l = net.get(leader);
	l.proposeConfiguration({ servers: l.configuration().servers.filter((s) => s.id !== leader) });
	net.settle();
	net.tick(1);
	t.not(l.role, "leader");
	const next = net.electLeader();
	t.not(next, leader);
});

t.test("a follower far behind gets the snapshot (InstallSnapshot) and then the rest", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	const l = net.get(leader);
	const slow = ["a", "b", "c"].find((id) => id !== leader)!;
	net.isolate(slow);
	for (let i = 0; i < 30; i++) l.propose([cmd(`op${i}`)]);
	net.settle();
	net.tick(1, [leader]);
	const meta: SnapshotMeta = {
		id: "snap-1",
		index: l.log.applied,
		term: l.log.term(l.log.applied)!,
		configuration: l.committedConfiguration(),
		configurationIndex: 1,
		size: 3,
	};
	net.snapshots.set(leader, Buffer.from("fsm"));
	l.compact(meta, 2);
	t.ok(l.log.firstIndex() > 5, "the leader compacted its log");
	net.heal();
	net.tick(3);
	const s = net.get(slow);
	t.equal(s.log.snapshotIndex, meta.index, "the slow follower installed the snapshot");
	l.propose([cmd("after")]);
	net.settle();
	net.tick(1);
	t.same(net.commandsApplied(slow).at(-1), "after");
	t.equal(s.log.applied, l.log.applied);
});

t.test("ReadIndex confirms leadership with a quorum before answering", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	const l = net.get(leader);
	l.propose([cmd("x")]);
	net.settle();
	l.readIndex(42);
	const rd = l.ready();
	t.same(rd.readStates, [], "no answer before the followers confirm");
	l.advance(rd);
	for (const m of rd.messages) if (!net.cut.has(`${m.from}>${m.to}`)) net.get(m.to).step(m);
	let got: Array<{ ctx: number; index: number }> = [];
	for (let i = 0; i < 5; i++) {
		for (const [id, core] of net.cores) {
			if (!core.hasReady()) continue;
			const r = core.ready();
			if (id === leader) got = got.concat(r.readStates);
			core.advance(r);
			for (const m of r.messages) net.get(m.to).step(m);
		}
	}
	t.same(got, [{ ctx: 42, index: l.log.committed }]);
	// A leader that cannot reach a quorum cannot answer (settle keeps every read state it sees).
	net.isolate(leader);
	l.readIndex(43);
	net.settle();
	t.same(net.readStates.get(leader) ?? [], [], "no answer while cut off");
	// Once it can reach the others again, a later round confirms the earlier one too.
	net.heal();
	l.readIndex(44);
	net.settle();
	t.same(
		(net.readStates.get(leader) ?? []).map((r) => r.ctx),
		[43, 44],
		"both answered once a quorum acknowledged",
	);
});

t.test("flow control: appends respect the entry and byte limits, and at most maxInflight are out", async (t) => {
	const net = new Net(["a", "b", "c"], { maxEntriesPerAppend: 3, maxBytesPerAppend: 100, maxInflight: 2 });
	const leader = net.electLeader();
	const l = net.get(leader);
	const [f, g] = ["a", "b", "c"].filter((id) => id !== leader) as [string, string];
	// Acknowledgements from f are lost: the leader may have only maxInflight appends out to it.
	net.cut.add(`${f}>${leader}`);
	const from = net.sent.length;
	for (let i = 0; i < 20; i++) {
		l.propose([cmd(`e${String(i).padStart(2, "0")}-${"x".repeat(10)}`)]);
		net.settle();
	}
	const appends = net.sent
		.slice(from)
		.filter((m) => m.type === "append" && m.from === leader && m.entries.length > 0) as Array<
		Message & { type: "append" }
	>;
	const toF = appends.filter((m) => m.to === f);
	t.equal(toF.length, 2, "two appends in flight to the silent follower, then it waits");
	t.ok(appends.filter((m) => m.to === g).length >= 10, "the acknowledging follower keeps getting appends");
	for (const m of appends) {
		t.ok(m.entries.length <= 3, `append of ${m.entries.length} entries`);
		const bytes = m.entries.reduce((n, e) => n + e.data.length + 24, 0);
		t.ok(m.entries.length === 1 || bytes <= 100, `append of ${bytes} accounted bytes`);
	}
	// Restore the link: the follower catches up, still in bounded appends.
	net.heal();
	net.tick(3);
	t.equal(net.commandsApplied(f).length, 20, "f caught up");
	const after = net.sent.filter((m) => m.type === "append" && m.to === f) as Array<Message & { type: "append" }>;
	t.ok(after.every((m) => m.entries.length <= 3));
	// A batch of 9 small entries goes out in appends of at most 3 (entry limit).
	const before9 = net.sent.length;
	l.propose(Array.from({ length: 9 }, (_, i) => cmd(`b${i}`)));
	net.settle();
	const batches = net.sent
		.slice(before9)
		.filter((m) => m.type === "append" && m.to === g && m.entries.length > 0) as Array<Message & { type: "append" }>;
	t.same(
		batches.map((m) => m.entries.length),
		[3, 3, 3],
	);
});

t.test("a late acknowledgement while the next entry is in flight sends no empty append", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	net.tick(2);
	const l = net.get(leader);
	const [f, g] = ["a", "b", "c"].filter((id) => id !== leader) as [string, string];
	/** Drain a core's Ready (persistence implied) and return the messages it sends. */
	const out = (id: string): Message[] => {
		const core = net.get(id);
		const msgs: Message[] = [];
		while (core.hasReady()) {
			const rd = core.ready();
			net.applied.get(id)!.push(...rd.committed);
			msgs.push(...rd.messages);
			core.advance(rd);
		}
		return msgs;
	};
	const deliver = (msgs: Message[], to: string) => {
		for (const m of msgs) if (m.to === to) net.get(to).step(m);
	};
	// e1 goes to both; f acknowledges at once and commits it, g's acknowledgement is late.
	l.propose([cmd("e1")]);
	const e1 = out(leader);
	deliver(e1, f);
	deliver(e1, g);
	deliver(out(f), leader);
	const lateAck = out(g);
	t.equal(lateAck.filter((m) => m.type === "appendResp").length, 1, "g acknowledged e1");
	out(leader);
	t.equal(l.log.committed, l.log.lastIndex(), "e1 committed with f");
	// e2 is sent to both before g's acknowledgement of e1 arrives.
	l.propose([cmd("e2")]);
	const e2 = out(leader).filter((m) => m.type === "append");
	t.same(
		e2.map((m) => [m.to, m.type === "append" ? m.entries.length : -1]).sort(),
		[f, g].map((id) => [id, 1]).sort(),
		"e2 goes to both",
	);
	deliver(lateAck, leader);
	t.same(out(leader), [], "nothing for g: e2 is already in flight to it");
	// And replication still completes: both acknowledge e2, it commits and applies everywhere.
	deliver(e2, f);
	deliver(e2, g);
	net.settle();
	net.tick(2);
	for (const id of ["a", "b", "c"]) t.same(net.commandsApplied(id), ["e1", "e2"], `${id} applied e1, e2`);
});

t.test("conflict back-off skips a whole conflicting term in one round trip", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const old = net.electLeader();
	net.get(old).propose([cmd("c1"), cmd("c2")]);
	net.settle();
	net.isolate(old);
	// The cut-off leader appends 10 entries of its term that nobody else has.
	for (let i = 0; i < 10; i++) net.get(old).propose([cmd(`stale${i}`)]);
	net.settle();
	const [x, y] = ["a", "b", "c"].filter((id) => id !== old) as [string, string];
	net.tick(40, [x, y]);
	const second = net.leaders().find((id) => id !== old)!;
	const third = second === x ? y : x;
	for (let i = 0; i < 10; i++) net.get(second).propose([cmd(`new${i}`)]);
	net.settle();
	// Now the second leader goes away and the old one meets the third node, whose log is longer
	// and newer: it wins, and its first probe to the old leader lands past a run of 10 entries of
	// the old term that conflict with its own.
	const from = net.sent.length;
	net.heal();
	net.isolate(second);
	net.tick(60, [old, third]);
	t.equal(
		net
			.leaders()
			.filter((id) => id !== second)
			.join(),
		third,
		"the third node leads",
	);
	const rejections = net.sent
		.slice(from)
		.filter((m) => m.type === "appendResp" && m.from === old && m.to === third && !m.success && m.index > 0);
	t.equal(rejections.length, 1, "one rejection for the whole conflicting term, not one per entry");
	t.same(
		net.commandsApplied(old).filter((c) => c.startsWith("stale")),
		[],
		"the stale entries were replaced",
	);
	t.same(net.commandsApplied(old).slice(0, 12), net.commandsApplied(third).slice(0, 12));
	t.equal(net.get(old).log.lastIndex(), net.get(third).log.lastIndex());
});

t.test("stale terms: a deposed leader learns the new term from a reply and steps down", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const old = net.electLeader();
	net.isolate(old);
	const others = ["a", "b", "c"].filter((id) => id !== old);
	net.tick(40, others);
	const fresh = net.leaders().find((id) => id !== old)!;
	t.ok(net.get(fresh).term > net.get(old).term);
	net.heal();
	net.tick(1, [old]); // the old leader's heartbeat meets a higher term
	t.equal(net.get(old).role, "follower");
	t.equal(net.get(old).term, net.get(fresh).term);
});

t.test("malformed messages are refused with InvalidMessageError", async (t) => {
	const ok = { type: "heartbeat", term: 1, from: "a", to: "b", commit: 0, ctx: 0 };
	t.same(validateMessage(ok), ok);
	const bad: Array<[unknown, RegExp]> = [
		[null, /not an object/],
		[{ ...ok, term: -1 }, /term/],
		[{ ...ok, term: 1.5 }, /term/],
		[{ ...ok, from: "" }, /from\/to/],
		[{ ...ok, type: "hax" }, /unknown message type/],
		[{ type: "append", term: 2, from: "a", to: "b", prevIndex: 1, prevTerm: 1, commit: 0, entries: "x" }, /entries/],
		[
			{
				type: "append",
				term: 2,
				from: "a",
				to: "b",
				prevIndex: 1,
				prevTerm: 1,
				commit: 0,
				entries: [{ index: 5, term: 1, type: "command", data: new Uint8Array() }],
			},
			/index 5 where 2/,
		],
		[
			{
				type: "append",
				term: 2,
				from: "a",
				to: "b",
				prevIndex: 1,
				prevTerm: 1,
				commit: 0,
				entries: [{ index: 2, term: 3, type: "command", data: new Uint8Array() }],
			},
			/entry term/,
		],
		[{ type: "snapshot", term: 1, from: "a", to: "b", meta: {} }, /meta/],
	];
	for (const [m, re] of bad) {
		const err = t.throws(() => validateMessage(m)) as Error;
		t.ok(err instanceof InvalidMessageError, "named error");
		t.match(err.message, re);
	}
});

t.test("a restarted node recovers term, vote and log from its persisted state", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	net.get(leader).propose([cmd("durable")]);
	net.settle();
	net.tick(1);
	const f = ["a", "b", "c"].find((id) => id !== leader)!;
	const before = net.get(f);
	const entries = before.log.slice(1, before.log.lastIndex());
	const again = new RaftCore(defaultCoreConfig(f), { hardState: before.hardState(), entries });
	t.equal(again.term, before.term);
	t.equal(again.log.lastIndex(), before.log.lastIndex());
	const rd = again.ready();
	t.same(
		rd.committed.filter((e) => e.type === "command").map((e) => Buffer.from(e.data).toString()),
		["durable"],
		"committed entries are re-applied after a restart",
	);
});

// A replica deleted and started again under the same id (a node demoted then promoted at once)
// answers with an empty log below what the leader recorded as its match. The leader must start it
// afresh; before, it probed just past the old match forever and, with that server's vote needed,
// committed nothing more.
for (const compacted of [false, true]) {
	t.test(
		`a follower that lost its log under the same id is replicated afresh (${compacted ? "snapshot" : "log"})`,
		async (t) => {
			const net = new Net(["a", "b", "c"]);
			const leader = net.electLeader();
			const l = net.get(leader);
			const [lost, away] = ["a", "b", "c"].filter((id) => id !== leader) as [string, string];
			for (let i = 0; i < 10; i++) l.propose([cmd(`op${i}`)]);
			net.settle();
			net.tick(1);
			t.equal(l.status().progress[lost]?.match, l.log.lastIndex(), "control: the follower had acknowledged everything");
			if (compacted) {
				net.snapshots.set(leader, Buffer.from("fsm"));
				l.compact(
					{
						id: "snap-lost",
						index: l.log.applied,
						term: l.log.term(l.log.applied)!,
						configuration: l.committedConfiguration(),
						configurationIndex: 1,
						size: 3,
					},
					0,
				);
			}
			// The other follower is away: every commit from now on needs the one that lost its state.
			net.isolate(away);
			net.add(lost, []);
			l.propose([cmd("after")]);
			net.settle();
			net.tick(5);
			t.equal(l.progressResets, 1, "the leader noticed the lost log once");
			t.ok(l.log.committed >= l.log.lastIndex(), `the leader commits again (commit ${l.log.committed})`);
			const f = net.get(lost);
			if (compacted) t.ok(f.log.snapshotIndex > 0, "the follower got the snapshot");
			else
				t.same(
					net.commandsApplied(lost).slice(0, 10),
					Array.from({ length: 10 }, (_, i) => `op${i}`),
				);
			t.equal(f.log.applied, l.log.applied, "and applied everything");
			t.same(net.commandsApplied(lost).at(-1), "after");
		},
	);
}

t.test("a follower knows the leader's commit beyond its own (an older snapshot installed)", async (t) => {
	const f = new RaftCore(
		defaultCoreConfig("f", () => 0.5),
		{ hardState: { term: 0, vote: "", commit: 0 }, entries: [] },
	);
	const drain = () => {
		while (f.hasReady()) f.advance(f.ready());
	};
	const config = {
		servers: [
			{ id: "L", address: "L", suffrage: "voter" as const },
			{ id: "f", address: "f", suffrage: "voter" as const },
		],
	};
	f.step({ type: "append", term: 3, from: "L", to: "f", prevIndex: 40, prevTerm: 3, entries: [], commit: 40 });
	drain();
	t.equal(f.status().commit, 0, "an empty replica commits nothing");
	t.equal(f.status().leaderCommit, 40, "but knows the leader committed up to 40");
	const meta: SnapshotMeta = { id: "s", index: 30, term: 2, configuration: config, configurationIndex: 1, size: 1 };
	f.step({ type: "snapshot", term: 3, from: "L", to: "f", meta, data: Buffer.from("x") });
	drain();
	t.equal(f.status().commit, 30, "after an older snapshot its own commit is the snapshot's");
	t.equal(f.status().applied, 30);
	t.equal(f.status().leaderCommit, 40, "still behind the leader");
	const entries = Array.from({ length: 10 }, (_, k) => ({
		index: 31 + k,
		term: 3,
		type: "command" as const,
		data: Buffer.from(`e${k}`),
	}));
	f.step({ type: "append", term: 3, from: "L", to: "f", prevIndex: 30, prevTerm: 2, entries, commit: 40 });
	drain();
	t.equal(f.status().applied, 40, "caught up");
	t.equal(f.status().leaderCommit, 40);
	f.step({ type: "heartbeat", term: 4, from: "M", to: "f", commit: 12, ctx: 0 });
	drain();
	t.equal(f.status().leaderCommit, 40, "a new leader: its own commit (40), not the old leader's claim");
});
