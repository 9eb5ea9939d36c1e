// autopilot's decide(): which nodes vote and the next step, case by case (target size, zones, pins,
// stabilization, dead threshold, minQuorum, one removal at a time, leadership transfer first).
import t from "tap";
import {
	AUTOPILOT_DEFAULTS,
	type AutopilotSettings,
	type CandidateNode,
	decide,
	targetVoters,
} from "../../../../agent/manager/autopilot/index.ts";

const NOW = 1_000_000_000;
const S: AutopilotSettings = { ...AUTOPILOT_DEFAULTS, deadServerThresholdMs: 60_000, stabilizationMs: 10_000 };

let seq = 0;
/** A healthy worker by default; `voter: true` makes a stable manager voter. */
function node(id: string, o: Partial<CandidateNode> & { voter?: boolean; zone?: string } = {}): CandidateNode {
	const { voter, ...rest } = o;
	return {
		id,
		role: voter ? "manager" : "worker",
		preference: "auto",
		createdAt: ++seq,
		healthy: true,
		...(voter ? { suffrage: "voter" as const, stableSince: NOW - 3_600_000 } : {}),
		leader: false,
		...rest,
	};
}
const dead = (ms: number): Partial<CandidateNode> => ({ healthy: false, unhealthySince: NOW - ms });
const kinds = (d: ReturnType<typeof decide>) =>
	d.actions.map((a) => `${a.kind} ${a.id}${"role" in a ? ` ${a.role}` : ""}`);

t.test("target: 3, 5 with 5+ that may vote, never more than there are, odd when limited", async (t) => {
	t.same(
		[1, 2, 3, 4, 5, 6, 9].map((n) => targetVoters({}, n)),
		[1, 1, 3, 3, 5, 5, 5],
	);
	t.same(
		[1, 2, 3, 7].map((n) => targetVoters({ voters: 7 }, n)),
		[1, 1, 3, 7],
	);
	t.equal(targetVoters({ voters: 1 }, 9), 1, "the user's target wins when there are enough nodes");
});

t.test("a lone voter with one more node: no promotion (2 voters tolerate no more than 1)", async (t) => {
	const d = decide([node("a", { voter: true, leader: true }), node("b")], S, NOW);
	t.equal(d.target, 1);
	t.same(d.actions, []);
});

t.test("three nodes: the two workers are promoted, record first", async (t) => {
	const d = decide([node("a", { voter: true, leader: true }), node("b"), node("c")], S, NOW);
	t.equal(d.target, 3);
	t.same(kinds(d), ["setRole b manager", "setRole c manager"]);
	t.match(d.actions[0], { reason: /promoted: the cluster wants 3 voters, has 1/ });
});

t.test("the promotion pipeline: non-voter, then voter only once stable for the stabilization time", async (t) => {
	const a = node("a", { voter: true, leader: true });
	const b = node("b", { role: "manager" });
	t.same(kinds(decide([a, b, node("c", { voter: true })], S, NOW)), ["addNonvoter b"], "a manager record not in Raft");
	const catching = node("b", { role: "manager", suffrage: "nonvoter" });
	t.same(kinds(decide([a, catching, node("c", { voter: true })], S, NOW)), [], "not caught up yet: wait");
	const young = { ...catching, stableSince: NOW - 9_000 };
	t.same(kinds(decide([a, young, node("c", { voter: true })], S, NOW)), [], "stable 9 s of 10: wait");
	const ripe = { ...catching, stableSince: NOW - 10_000 };
	const d = decide([a, ripe, node("c", { voter: true })], S, NOW);
	t.same(kinds(d), ["addVoter b"], "stable 10 s: it votes");
	t.match(d.actions[0], { reason: /caught up and healthy for 10s/ });
});

t.test("five nodes in three zones: 5 voters; with one pinned worker, 3 over the 3 zones", async (t) => {
	const zones = ["a", "b", "c", "a", "b"];
	const all = zones.map((z, i) => node(`n${i + 1}`, { zone: z, ...(i === 0 ? { voter: true, leader: true } : {}) }));
	const d5 = decide(all, S, NOW);
	t.equal(d5.target, 5);
	t.same(d5.wanted.sort(), ["n1", "n2", "n3", "n4", "n5"]);
	const pinned = all.map((n) => (n.id === "n5" ? { ...n, preference: "worker" as const } : n));
	const d3 = decide(pinned, S, NOW);
	t.equal(d3.target, 3);
	t.same(d3.wanted, ["n1", "n2", "n3"], "one per zone: a (the voter), b and c; n4 would double zone a");
	t.same(kinds(d3), ["setRole n2 manager", "setRole n3 manager"]);
	t.notOk(
		d3.actions.some((a) => a.id === "n5"),
		"the pinned worker is never promoted",
	);
});

t.test("a voter fails: a replacement from its zone is promoted at once", async (t) => {
	const nodes = [
		node("a1", { zone: "a", voter: true, leader: true }),
		node("b1", { zone: "b", voter: true, ...dead(2000) }),
		node("c1", { zone: "c", voter: true }),
		node("a2", { zone: "a" }),
		node("b2", { zone: "b" }),
	];
	const d = decide(nodes, { ...S, voters: 3 }, NOW);
	t.same(d.wanted.sort(), ["a1", "b2", "c1"], "b2 takes the failed voter's zone");
	t.same(kinds(d), ["setRole b2 manager"], "no removal yet: the dead voter is within the threshold");
	t.match(d.actions[0], { reason: /zone b.*replaces failed voter/ });
	// Same zone first, but a pinned worker there is skipped: another zone's node instead.
	const pinned = nodes.map((n) => (n.id === "b2" ? { ...n, preference: "worker" as const } : n));
	t.same(kinds(decide(pinned, { ...S, voters: 3 }, NOW)), ["setRole a2 manager"]);
});

t.test("a voter dead past the threshold is removed; within it, it is not", async (t) => {
	const base = [
		node("a", { voter: true, leader: true }),
		node("b", { voter: true }),
		node("c", { voter: true }),
		node("d", { voter: true }),
	];
	const within = decide([...base, node("e", { voter: true, ...dead(59_000) })], S, NOW);
	t.notOk(
		within.actions.some((a) => a.kind === "removeServer"),
		"59 s of 60: kept",
	);
	const past = decide([...base, node("e", { voter: true, ...dead(61_000) })], S, NOW);
	t.same(
		past.actions.filter((a) => a.kind === "removeServer").map((a) => a.id),
		["e"],
	);
	t.match(
		past.actions.find((a) => a.kind === "removeServer"),
		{ reason: /unhealthy for 1m.*threshold 1m/ },
	);
});

t.test("removals: one at a time (the longest dead), never below minQuorum", async (t) => {
	const nodes = [
		node("a", { voter: true, leader: true }),
		node("b", { voter: true }),
		node("c", { voter: true }),
		node("d", { voter: true, ...dead(100_000) }),
		node("e", { voter: true, ...dead(200_000) }),
	];
	const d = decide(nodes, S, NOW);
	t.same(
		d.actions.filter((a) => a.kind === "removeServer").map((a) => a.id),
		["e"],
		"only one removal, the longest dead",
	);
	// Three voters, one dead for ages: minQuorum 3 keeps it (2 voters would tolerate nothing more).
	const three = [
		node("a", { voter: true, leader: true }),
		node("b", { voter: true }),
		node("c", { voter: true, ...dead(1e9) }),
	];
	t.same(decide(three, S, NOW).actions, [], "minQuorum 3: kept");
	t.same(kinds(decide(three, { ...S, minQuorum: 2 }, NOW)), ["removeServer c"], "control: minQuorum 2 removes it");
});

t.test("no removal or demotion that would cost the quorum", async (t) => {
	// 5 voters, 3 dead: the 2 healthy ones are no majority, removing one dead leaves 2 of 4: not safe.
	const nodes = [
		node("a", { voter: true, leader: true }),
		node("b", { voter: true }),
		node("c", { voter: true, ...dead(1e9) }),
		node("d", { voter: true, ...dead(1e9) }),
		node("e", { voter: true, ...dead(1e9) }),
	];
	t.notOk(
		decide(nodes, S, NOW).actions.some((a) => a.kind === "removeServer"),
		"no majority: nothing removed",
	);
});

t.test("extra voters are demoted once the wanted ones vote; the leader hands leadership away first", async (t) => {
	const zoned = [
		node("a1", { zone: "a", voter: true }),
		node("a2", { zone: "a", voter: true, leader: true }),
		node("b1", { zone: "b", voter: true }),
		node("c1", { zone: "c", voter: true }),
	];
	const d = decide(zoned, { ...S, voters: 3 }, NOW);
	t.same(d.wanted.sort(), ["a2", "b1", "c1"], "the leader keeps zone a's seat");
	t.same(kinds(d), ["demoteVoter a1"]);
	const pinnedLeader = zoned.map((n) => (n.id === "a2" ? { ...n, preference: "worker" as const } : n));
	const p = decide(pinnedLeader, { ...S, voters: 3 }, NOW);
	t.same(kinds(p), ["transferLeadership a2"], "a pinned-worker leader transfers leadership before anything");
	// Not while a wanted node is still catching up: the extra keeps the tolerance meanwhile.
	const catching = [
		node("a1", { zone: "a", voter: true, leader: true }),
		node("a2", { zone: "a", voter: true }),
		node("b1", { zone: "b", voter: true }),
		node("c1", { zone: "c", role: "manager", suffrage: "nonvoter" }),
	];
	t.same(kinds(decide(catching, { ...S, voters: 3 }, NOW)), [], "a2 stays a voter until c1 votes");
});

t.test("records follow the configuration: a demoted non-voter stops, then leaves Raft", async (t) => {
	const base = [node("a", { voter: true, leader: true }), node("b", { voter: true }), node("c", { voter: true })];
	const demoted = node("d", { role: "manager", suffrage: "nonvoter", preference: "worker" });
	t.same(kinds(decide([...base, demoted], S, NOW)), ["setRole d worker"]);
	t.same(
		kinds(decide([...base, { ...demoted, role: "worker", sawRecord: false }], S, NOW)),
		[],
		"not before its log holds the record that makes it a worker",
	);
	t.same(kinds(decide([...base, { ...demoted, role: "worker", sawRecord: true }], S, NOW)), ["removeServer d"]);
	const joining = node("j", { role: "manager", healthy: false, unhealthySince: NOW - 2000 });
	t.same(kinds(decide([...base, joining], S, NOW)), [], "a manager joiner before its first heartbeat: left alone");
	const gone = node("e", { role: "manager", ...dead(61_000) });
	const d = decide([...base, gone], S, NOW);
	t.same(kinds(d), ["setRole e worker"]);
	t.match(d.actions[0], { reason: /not a Raft server, and down/ });
});

t.test("a pinned manager votes even past the target; a pinned worker voter is demoted", async (t) => {
	const nodes = [
		node("a", { voter: true, leader: true }),
		node("b", { voter: true }),
		node("c", { voter: true }),
		node("d", { preference: "manager" }),
	];
	const d = decide(nodes, S, NOW);
	t.ok(d.wanted.includes("d"), "the pinned manager is wanted");
	t.same(kinds(d)[0], "setRole d manager");
	const pw = decide(
		[
			node("a", { voter: true, leader: true }),
			node("b", { voter: true }),
			node("c", { voter: true, preference: "worker" }),
			node("d"),
		],
		S,
		NOW,
	);
	t.same(kinds(pw), ["setRole d manager"], "its replacement first");
	const after = decide(
		[
			node("a", { voter: true, leader: true }),
			node("b", { voter: true }),
			node("c", { voter: true, preference: "worker" }),
			node("d", { voter: true }),
		],
		S,
		NOW,
	);
	t.same(kinds(after), ["demoteVoter c"], "then the pinned worker stops voting");
});

t.test("a failure among 5 voters does not shrink the target at once (no 5 -> 3 -> 5 churn)", async (t) => {
	const nodes = ["a", "b", "c", "d"].map((id, i) => node(id, { voter: true, leader: i === 0 }));
	const d = decide([...nodes, node("e", { voter: true, ...dead(5000) })], S, NOW);
	t.equal(d.target, 5);
	t.same(d.actions, [], "4 healthy voters of 5 and nobody to promote: nothing to do");
	const later = decide([...nodes, node("e", { voter: true, ...dead(61_000) })], S, NOW);
	t.same(kinds(later), ["removeServer e"], "past the threshold: removed (and no demotion beside a dead voter)");
	const four = decide(nodes, S, NOW);
	t.equal(four.target, 3);
	t.same(kinds(four), ["demoteVoter d"], "then 4 voters are one too many");
});

t.test("a non-voter stuck catching up gives its seat to another node; a pinned manager keeps it", async (t) => {
	const a = node("a", { voter: true, leader: true });
	const b = node("b", { voter: true });
	// c is the older candidate and was chosen first; it never caught up.
	const c = node("c", { role: "manager", suffrage: "nonvoter" });
	const d = node("d");
	const control = decide([a, b, c, node("d")], S, NOW);
	t.same(control.wanted, ["a", "b", "c"], "control: while c is not stuck it holds the third seat");
	t.same(kinds(control), [], "and nothing is done meanwhile (it is catching up)");

	const stuck = decide([a, b, { ...c, stuck: true }, d], S, NOW);
	t.same(stuck.wanted, ["a", "b", "d"], "stuck, c loses the seat to d");
	t.same(kinds(stuck), ["setRole d manager", "setRole c worker"]);
	t.match(stuck.actions[1], { reason: /did not catch up within the catch-up timeout/ });

	const pinned = decide([a, b, { ...c, stuck: true, preference: "manager" }, d], S, NOW);
	t.same(pinned.wanted, ["c", "a", "b"], "a pinned manager keeps its seat, stuck or not (the user asked)");
	t.same(kinds(pinned), []);
});
