// Raft messages are taken only from servers of the latest configuration: a peer outside it (any
// connected worker knows the cluster id) must not depose the leader nor make a follower commit.
import t from "tap";
import {
	InvalidMessageError,
	type LogEntry,
	type Message,
	validateMessage,
	withoutServer,
} from "../../../consensus/index.ts";
import { cmd, Net } from "./harness.ts";

/** Three voters with a leader whose last entries reached the followers but were never committed. */
function uncommittedTail(onRefuse?: (m: Message) => void) {
	const net = new Net(["a", "b", "c"], { onRefuse });
	const leader = net.electLeader();
	net.get(leader).propose([cmd("x=1")]);
	net.settle();
	const followers = ["a", "b", "c"].filter((id) => id !== leader);
	// The next entries reach the followers; every acknowledgement is lost, so nothing commits.
	net.get(leader).propose([cmd("x=2"), cmd("x=3")]);
	net.settle(1000, (m) => m.type === "appendResp" || m.type === "heartbeatResp");
	return { net, leader, followers };
}

t.test("a forged higher-term heartbeat from a non-member deposes nobody and commits nothing", async (t) => {
	const { net, leader, followers } = uncommittedTail();
	const l = net.get(leader);
	const term = l.term;
	for (const id of followers) {
		const f = net.get(id);
		t.ok(f.log.lastIndex() > f.log.committed, `${id} holds an uncommitted tail`);
		t.equal(f.leader, leader);
	}
	const commits = followers.map((id) => net.get(id).log.committed);
	for (const id of [...followers, leader]) {
		const core = net.get(id);
		core.step({
			type: "heartbeat",
			term: term + 5,
			from: "mallory",
			to: id,
			commit: core.log.lastIndex() + 10,
			ctx: 0,
		});
	}
	for (const [k, id] of followers.entries()) {
		const f = net.get(id);
		t.equal(f.term, term, `${id} kept its term`);
		t.equal(f.leader, leader, `${id} kept its leader`);
		t.equal(f.log.committed, commits[k], `${id} committed nothing`);
		t.equal(f.refused, 1, `${id} counted the refusal`);
		t.equal(f.status().refused, 1);
		t.notOk(f.hasReady() && f.ready().messages.some((m) => m.to === "mallory"), `${id} did not answer`);
	}
	t.equal(l.role, "leader", "the leader was not deposed");
	t.equal(l.term, term);
	// Positive control: the real leader's heartbeat at its term is accepted and carries its commit.
	net.tick(3);
	t.equal(net.leaders().length, 1);
	t.equal(net.leaders()[0], leader);
	for (const id of followers) t.equal(net.get(id).log.committed, l.log.committed, `${id} follows the real leader`);
});

t.test("forged appends, votes, pre-votes and timeoutNow from a non-member are refused and reported", async (t) => {
	const seen: Message[] = [];
	const { net, leader, followers } = uncommittedTail((m) => seen.push(m));
	const f = net.get(followers[0]!);
	const term = f.term;
	const last = f.log.lastIndex();
	const forged: LogEntry = { index: last + 1, term: term + 2, type: "command", data: Buffer.from("evil") };
	const msgs: Message[] = [
		{
			type: "append",
			term: term + 2,
			from: "mallory",
			to: f.id,
			prevIndex: last,
			prevTerm: f.log.lastTerm(),
			entries: [forged],
			commit: last + 1,
		},
		// A conflicting append right after the commit point: it would overwrite the uncommitted tail.
		{
			type: "append",
			term: term + 3,
			from: "mallory",
			to: f.id,
			prevIndex: f.log.committed,
			prevTerm: f.log.term(f.log.committed)!,
			entries: [{ ...forged, index: f.log.committed + 1, term: term + 3 }],
			commit: f.log.committed + 1,
		},
		{
			type: "vote",
			pre: true,
			transfer: false,
			term: term + 1,
			from: "mallory",
			to: f.id,
			lastIndex: 99,
			lastTerm: 99,
		},
		{
			type: "vote",
			pre: false,
			transfer: true,
			term: term + 1,
			from: "mallory",
			to: f.id,
			lastIndex: 99,
			lastTerm: 99,
		},
		{ type: "timeoutNow", term, from: "mallory", to: f.id },
		{ type: "voteResp", pre: false, granted: true, term: term + 1, from: "mallory", to: f.id },
	];
	const before = { lastIndex: f.log.lastIndex(), commit: f.log.committed, vote: f.vote, role: f.role };
	for (const m of msgs) f.step(m);
	t.same(
		{ lastIndex: f.log.lastIndex(), commit: f.log.committed, vote: f.vote, role: f.role, term: f.term },
		{ ...before, term },
		"log, commit, vote, role and term untouched",
	);
	t.equal(f.log.entry(last)?.term, term, "the tail was not overwritten");
	t.equal(f.refused, msgs.length);
	// The refusal hook (the shell logs and counts each one) names the sender and the message type.
	t.same(
		seen.map((m) => [m.from, m.type]),
		msgs.map((m) => ["mallory", m.type]),
	);
	// The leader refuses a non-member's acknowledgements too (they could fake a quorum).
	const l = net.get(leader);
	const lc = l.log.committed;
	for (const from of ["mallory", "trudy"]) {
		l.step({
			type: "appendResp",
			term: l.term,
			from,
			to: leader,
			success: true,
			index: l.log.lastIndex(),
			hintIndex: 0,
			hintTerm: 0,
		});
	}
	t.equal(l.refused, 2);
	t.equal(l.log.committed, lc, "no quorum from non-members");
});

t.test("a removed server's messages are refused; a brand-new node accepts its leader", async (t) => {
	const net = new Net(["a", "b", "c"]);
	const leader = net.electLeader();
	const l = net.get(leader);
	net.tick(2);
	const gone = ["a", "b", "c"].find((id) => id !== leader)!;
	const stay = ["a", "b", "c"].find((id) => id !== leader && id !== gone)!;
	l.proposeConfiguration(withoutServer(l.configuration(), gone));
	net.settle();
	net.tick(2);
	t.notOk(
		l.configuration().servers.some((s) => s.id === gone),
		"removed",
	);
	const s = net.get(stay);
	const refusedBefore = s.refused;
	s.step({
		type: "vote",
		pre: true,
		transfer: false,
		term: s.term + 1,
		from: gone,
		to: stay,
		lastIndex: 999,
		lastTerm: 999,
	});
	s.step({ type: "heartbeat", term: s.term + 1, from: gone, to: stay, commit: 999, ctx: 0 });
	t.equal(s.refused - refusedBefore, 2, "the removed server's pre-vote and heartbeat were refused");
	t.equal(s.leader, leader);
	// A brand-new node (no configuration at all) accepts the leader that adds it.
	const d = net.add("d", []);
	l.proposeConfiguration({ servers: [...l.configuration().servers, { id: "d", address: "d", suffrage: "nonvoter" }] });
	net.settle();
	net.tick(3);
	t.equal(d.refused, 0);
	t.equal(d.leader, leader);
	t.equal(d.log.committed, l.log.committed, "the new node caught up");
	t.ok(
		d.configuration().servers.some((x) => x.id === "d"),
		"and now knows the configuration naming it",
	);
	t.equal(net.get(stay).refused - refusedBefore, 2, "no legitimate message was refused");
});

t.test("serverQuery/serverInfo are validated like every wire message", async (t) => {
	const base = { term: 1, from: "a", to: "b" };
	t.doesNotThrow(() => validateMessage({ ...base, type: "serverQuery", about: "c" }));
	t.doesNotThrow(() => validateMessage({ ...base, type: "serverInfo", about: "c", known: true }));
	t.doesNotThrow(() => validateMessage({ ...base, type: "timeoutNow" }), "timeoutNow needs no `about`");
	t.throws(() => validateMessage({ ...base, type: "serverQuery" }), InvalidMessageError);
	t.throws(() => validateMessage({ ...base, type: "serverInfo", about: "c", known: "yes" }), InvalidMessageError);
});
