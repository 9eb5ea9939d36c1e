// Membership bookkeeping in the core: which configuration is in force, and when a change may be
// proposed. Scripted message by message so each case is exact.
import t from "tap";
import {
	ConfigChangePendingError,
	type Configuration,
	defaultCoreConfig,
	encodeConfiguration,
	type LogEntry,
	RaftCore,
} from "../../../consensus/index.ts";

const servers = (ids: string[]): Configuration => ({
	servers: ids.map((id) => ({ id, address: id, suffrage: "voter" as const })),
});
const abc = servers(["a", "b", "c"]);
const abcd = servers(["a", "b", "c", "d"]);
const boot: LogEntry = { index: 1, term: 1, type: "configuration", data: encodeConfiguration(abc) };
const ids = (c: Configuration) => c.servers.map((s) => s.id).sort();

const core = (id: string, commit = 0) =>
	new RaftCore(
		{ ...defaultCoreConfig(id, () => 0.5), preVote: false },
		{ hardState: { term: 1, vote: "", commit }, entries: [boot] },
	);

const append = (term: number, prevIndex: number, prevTerm: number, entries: LogEntry[], commit: number) => ({
	type: "append" as const,
	term,
	from: "a",
	to: "b",
	prevIndex,
	prevTerm,
	entries,
	commit,
});

t.test("a stale or duplicated append never makes a follower forget a later config entry", async (t) => {
	const b = core("b");
	const noop: LogEntry = { index: 2, term: 2, type: "noop", data: new Uint8Array() };
	const change: LogEntry = { index: 3, term: 2, type: "configuration", data: encodeConfiguration(abcd) };
	b.step(append(2, 1, 1, [noop, change], 1));
	t.same(ids(b.configuration()), ["a", "b", "c", "d"]);
	t.equal(b.configurationIndex(), 3);
	// The same leader's older append arrives late (duplicated/reordered): all of it matches.
	b.step(append(2, 1, 1, [noop], 1));
	t.equal(b.log.lastIndex(), 3, "nothing was truncated");
	t.same(ids(b.configuration()), ["a", "b", "c", "d"], "the config is still that of entry 3");
	t.equal(b.configurationIndex(), 3);
	// An empty (heartbeat-like) append at an earlier point changes nothing either.
	b.step(append(2, 2, 2, [], 1));
	t.equal(b.configurationIndex(), 3);
	// A real truncation (a new leader overwrites 2..3) does bring the older config back.
	const other: LogEntry = { index: 2, term: 3, type: "noop", data: new Uint8Array() };
	b.step(append(3, 1, 1, [other], 1));
	t.equal(b.log.lastIndex(), 2);
	t.same(ids(b.configuration()), ["a", "b", "c"], "entry 3 is gone, so is its config");
	t.equal(b.configurationIndex(), 1);
	// And a truncation that writes a new config in place of the old one takes the new one.
	const abce = servers(["a", "b", "c", "e"]);
	b.step(append(4, 1, 1, [{ index: 2, term: 4, type: "configuration", data: encodeConfiguration(abce) }], 1));
	t.same(ids(b.configuration()), ["a", "b", "c", "e"]);
	t.equal(b.configurationIndex(), 2);
});

t.test("a new leader accepts a membership change only after committing an entry of its term", async (t) => {
	// The bootstrap config (index 1) is committed; a then wins term 2 without pre-vote.
	const a = core("a", 1);
	a.campaign();
	a.step({ type: "voteResp", pre: false, granted: true, term: 2, from: "b", to: "a" });
	t.equal(a.role, "leader");
	t.equal(a.log.committed, 1, "its no-op (index 2) is not committed yet");
	const err = t.throws(() => a.proposeConfiguration(abcd)) as ConfigChangePendingError;
	t.ok(err instanceof ConfigChangePendingError, "named error");
	t.equal(err.code, "ERR_CONFIG_PENDING");
	t.match(err.message, /entry of its term/);
	t.notOk(a.canChangeConfiguration());
	// a persists its no-op and b acknowledges it: now a change is allowed, and only one at a time.
	a.advance(a.ready());
	a.step({ type: "appendResp", term: 2, from: "b", to: "a", success: true, index: 2, hintIndex: 0, hintTerm: 0 });
	t.equal(a.log.committed, 2);
	t.ok(a.canChangeConfiguration());
	const e = a.proposeConfiguration(abcd);
	t.equal(e.index, 3);
	t.notOk(a.canChangeConfiguration());
	const again = t.throws(() => a.proposeConfiguration(servers(["a", "b", "c", "d", "e"]))) as Error;
	t.ok(again instanceof ConfigChangePendingError);
	t.match(again.message, /still uncommitted/);
});

t.test("configurationAt answers the config in force at an index, even behind the commit", async (t) => {
	const b = core("b");
	const change: LogEntry = { index: 2, term: 2, type: "configuration", data: encodeConfiguration(abcd) };
	const cmd: LogEntry = { index: 3, term: 2, type: "command", data: new Uint8Array([1]) };
	b.step(append(2, 1, 1, [change, cmd], 3));
	t.equal(b.log.committed, 3);
	t.equal(b.log.applied, 0, "nothing applied yet");
	t.same(ids(b.configurationAt(1).config), ["a", "b", "c"]);
	t.equal(b.configurationAt(1).index, 1);
	t.same(ids(b.configurationAt(2).config), ["a", "b", "c", "d"]);
	t.equal(b.committedConfigurationIndex(), 2);
	b.advance(b.ready());
	t.equal(b.log.applied, 3);
	t.equal(b.configurationAt(3).index, 2);
});
