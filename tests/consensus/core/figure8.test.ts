// The Raft paper's Figure 8, scripted: an entry of an old term stored on a majority must not be
// committed by counting replicas, because a server whose log ends in a later term can still be
// elected and overwrite it. Only an entry of the leader's current term commits by counting, and
// everything before it with it. Pre-vote and check-quorum are off: the subject is the commit rule.
// Each new leader appends a no-op of its term, so indexes are one later than in the paper.
import t, { type Test } from "tap";
import type { AppendRequest, Message } from "../../../consensus/index.ts";
import { cmd, Net } from "./harness.ts";

const ids = ["s1", "s2", "s3", "s4", "s5"];
const OPTS = { preVote: false, checkQuorum: false, maxEntriesPerAppend: 1, maxInflight: 1 };
const isAppend = (m: Message): m is AppendRequest => m.type === "append";

/** Figure 8 (a)-(c). Returns the net with s1 leading term 4; A (index 3, term 2) on s1, s2, s3, s4. */
function upToC(t: Test): Net {
	// One entry per append and one append in flight, so a follower can acknowledge index 3 without
	// receiving index 4: the leader learns that index 3 sits on a majority, which is the trap.
	const net = new Net(ids, OPTS);
	const s = (id: string) => net.get(id);

	// (a) s1 leads term 2; its no-op (index 2) commits everywhere; A (index 3) reaches only s2.
	s("s1").campaign();
	net.settle();
	t.equal(s("s1").role, "leader");
	t.equal(s("s1").term, 2);
	// Followers learn the commit from the next append or heartbeat: one heartbeat round.
	s("s1").tick();
	net.settle();
	t.same(
		ids.map((id) => s(id).log.committed),
		[2, 2, 2, 2, 2],
	);
	s("s1").propose([cmd("A")]);
	net.settle(1000, (m) => isAppend(m) && m.from === "s1" && m.to !== "s2");
	t.same([s("s1").log.term(3), s("s2").log.term(3), s("s3").log.term(3)], [2, 2, undefined], "A on s1 and s2 only");
	t.equal(s("s1").log.committed, 2, "A is on two of five: not committed");

	// (b) s1 is cut off; s5 is elected in term 3 by s3, s4 (s2's log is newer, it refuses), and its
	// no-op at index 3 reaches nobody.
	net.isolate("s1");
	s("s5").campaign();
	net.settle(1000, (m) => isAppend(m) && m.from === "s5");
	t.equal(s("s5").role, "leader");
	t.equal(s("s5").term, 3);
	t.equal(s("s5").log.term(3), 3, "s5 holds a different entry (term 3) at index 3");

	// (c) s5 is cut off; s1 restarts (a follower again, with its log) and is elected in term 4 by
	// s2, s3, s4 (its log ends at index 3, theirs no later). It brings A to s3 and s4, who
	// acknowledge index 3; its own no-op (index 4, term 4) reaches no one.
	net.heal();
	net.isolate("s5");
	net.restart("s1", OPTS);
	t.equal(s("s1").role, "follower");
	s("s1").campaign(); // term 3: s3 and s4 voted for s5 in term 3 and refuse
	net.settle(1000, (m) => isAppend(m) && m.from === "s1");
	s("s1").campaign(); // term 4
	// s3 and s4 refuse the first append (prev = index 3, which they lack); the leader backs off
	// and sends A alone, which they acknowledge; the no-op that follows is lost, as is all to s2.
	const probed = new Set<string>();
	net.settle(1000, (m) => {
		if (!isAppend(m) || m.from !== "s1") return false;
		if (m.to === "s2") return true;
		if (!m.entries.some((e) => e.index >= 4)) return false;
		if (probed.has(m.to)) return true;
		probed.add(m.to);
		return false;
	});
	t.equal(s("s1").role, "leader");
	t.equal(s("s1").term, 4);
	t.same(
		["s1", "s2", "s3", "s4"].map((id) => s(id).log.term(3)),
		[2, 2, 2, 2],
		"A (term 2) is now on four of five servers",
	);
	t.equal(s("s3").log.lastIndex(), 3, "s3 did not get the term-4 no-op");
	t.equal(
		s("s1").log.committed,
		2,
		"yet s1 does not commit A: it is not of the current term, and no term-4 entry is on a majority",
	);
	for (const id of ids) t.notOk(net.commandsApplied(id).includes("A"), `${id} has not applied A`);
	return net;
}

t.test(
	"(d1) s1 crashes before its term reaches a majority: s5 wins and replaces A, which was never committed",
	async (t) => {
		const net = upToC(t);
		net.heal();
		net.isolate("s1");
		net.restart("s5", OPTS); // s5 still believes it leads term 3; it comes back as a follower
		// Term 4 is taken (s2..s4 voted for s1), so s5 may need a second try; its log ends in term 3,
		// newer than s2..s4's term 2, so they vote for it.
		for (let i = 0; i < 3 && net.get("s5").role !== "leader"; i++) {
			net.get("s5").campaign();
			net.settle();
		}
		t.equal(net.get("s5").role, "leader", "s5 is elected");
		for (const id of ["s2", "s3", "s4", "s5"])
			t.equal(net.get(id).log.term(3), 3, `${id}: index 3 is s5's term-3 entry, A is gone`);
		t.ok(net.get("s5").log.committed >= 4, "s5 commits its own term's no-op, and index 3 with it");
		for (const id of ids) t.notOk(net.commandsApplied(id).includes("A"), `${id} never applied A`);
	},
);

t.test("(d2) s1 gets a term-4 entry onto a majority first: A commits, and s5 can no longer win", async (t) => {
	const net = upToC(t);
	net.tick(3, ["s1"]); // heartbeats: the lost appends are sent again; the term-4 no-op spreads
	t.equal(net.get("s1").log.committed, 4, "the current-term entry commits, and A (index 3) with it");
	t.same(net.commandsApplied("s1"), ["A"]);
	net.heal();
	net.isolate("s1");
	net.restart("s5", OPTS);
	for (let i = 0; i < 3; i++) {
		net.get("s5").campaign();
		net.settle();
	}
	t.not(net.get("s5").role, "leader", "s5's log (ending in term 3 at index 3) is behind the majority's");
	for (const id of ["s2", "s3", "s4"]) t.equal(net.get(id).log.term(3), 2, `${id} still holds A`);
});
