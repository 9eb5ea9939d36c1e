// agent/roles: the node follows its record's role, but not from a replica still replaying its log
// (it would see its own old worker record and demote itself: a loop), and a manager nobody leads
// any more asks the others whether it was demoted while away.
import { setTimeout as sleep } from "node:timers/promises";
import t from "tap";
import { NodeDirectory, type NodeRole } from "../../../agent/nodes/index.ts";
import { RoleController } from "../../../agent/roles/index.ts";
import { waitFor } from "../../helpers/index.ts";

const SELF = "self-id";
const quiet = { info() {}, warn() {} };

function rig(o: {
	role: NodeRole;
	current?: boolean;
	leader?: boolean;
	probe?: NodeRole;
	votes?: boolean;
	everyMs?: number;
}) {
	const directory = new NodeDirectory();
	const state = {
		role: o.role,
		current: o.current ?? true,
		leader: o.leader ?? true,
		votes: o.votes ?? false,
		probes: 0,
		calls: [] as string[],
	};
	const rc = new RoleController({
		self: SELF,
		directory,
		logger: quiet,
		current: () => state.role,
		becomeManager: async () => {
			state.calls.push("manager");
			state.role = "manager";
		},
		becomeWorker: async () => {
			state.calls.push("worker");
			state.role = "worker";
		},
		hasLeader: () => state.leader,
		directoryCurrent: () => state.current,
		votes: () => state.votes,
		probeRole: async () => {
			state.probes++;
			return o.probe;
		},
		orphanMs: 100,
		everyMs: o.everyMs ?? 20,
	});
	const say = (role: NodeRole) =>
		directory.set(
			[
				{ id: SELF, role, addr: "198.18.0.2:2377" },
				{ id: "other", role: "manager", addr: "198.18.0.1:2377" },
			],
			directory.version + 1,
			false,
		);
	return { rc, state, say, directory };
}

t.test("a worker whose record says manager starts the manager side, once", async (t) => {
	const { rc, state, say } = rig({ role: "worker" });
	rc.start();
	say("worker");
	await sleep(50);
	t.same(state.calls, [], "control: the record says worker, nothing happens");
	say("manager");
	await sleep(100);
	t.same(state.calls, ["manager"]);
	await rc.stop();
});

t.test("a replica replaying its log does not follow the old records it passes through", async (t) => {
	const { rc, state, say } = rig({ role: "manager", current: false });
	rc.start();
	say("worker"); // its own join record, seen while catching up
	await sleep(100);
	t.same(state.calls, [], "not current: no demotion");
	state.current = true;
	await sleep(100);
	t.same(state.calls, ["worker"], "once current, a record that says worker is followed");
	await rc.stop();
});

t.test("a replica just short of current looks again soon, not at the next period", async (t) => {
	const { rc, state, say } = rig({ role: "manager", current: false, everyMs: 60_000 });
	rc.start();
	say("worker");
	await sleep(100);
	t.same(state.calls, [], "control: not current, no demotion");
	const at = Date.now();
	state.current = true; // its replica applied the last entries: no record changed, no event
	await waitFor("the demotion", async () => state.calls.length > 0, { timeoutMs: 5000, intervalMs: 10 });
	t.ok(Date.now() - at < 5000, `followed ${Date.now() - at} ms later (the period is 60 s)`);
	await rc.stop();
});

t.test("a voter does not follow a worker record: autopilot takes the vote away first", async (t) => {
	// A replica that installed an older snapshot sees the record of a time it was a worker, while
	// the configuration it holds already makes it a voter: deleting it then strands the leader.
	const { rc, state, say } = rig({ role: "manager", votes: true });
	rc.start();
	say("worker");
	await sleep(100);
	t.same(state.calls, [], "a voter: no demotion");
	state.votes = false;
	await waitFor("the demotion", async () => state.calls.length > 0, { timeoutMs: 5000, intervalMs: 10 });
	t.same(state.calls, ["worker"], "control: once its vote is gone, the worker record is followed");
	await rc.stop();
});

t.test("a manager with no leader asks whether it was demoted while away", async (t) => {
	const demoted = rig({ role: "manager", leader: false, probe: "worker" });
	demoted.say("manager"); // its own replica's stale view
	demoted.rc.start();
	await sleep(400);
	t.ok(demoted.state.probes >= 1, "it asked");
	t.same(demoted.state.calls, ["worker"], "the others say worker: it becomes one, and stays one");
	demoted.say("manager"); // a newer directory (from a manager) that says manager is followed again
	await sleep(100);
	t.same(demoted.state.calls.slice(0, 2), ["worker", "manager"], "control: a newer directory is followed");
	await demoted.rc.stop();

	const kept = rig({ role: "manager", leader: false, probe: "manager" });
	kept.say("manager");
	kept.rc.start();
	await sleep(400);
	t.ok(kept.state.probes >= 1, "control: it asked too");
	t.same(kept.state.calls, [], "the others say manager: it stays");
	await kept.rc.stop();

	const led = rig({ role: "manager", leader: true, probe: "worker" });
	led.say("manager");
	led.rc.start();
	await sleep(300);
	t.equal(led.state.probes, 0, "with a leader it does not ask");
	await led.rc.stop();
});

t.test("fenced: the replica stops, and only the recovered cluster's directory is followed", async (t) => {
	const { rc, state, say, directory } = rig({ role: "manager", everyMs: 20 });
	say("manager");
	directory.set(directory.list(), 900); // the old replica's history ran further than the recovered one
	rc.start();
	await sleep(50);
	t.same(state.calls, [], "control: a manager whose record says manager stays one");
	rc.fenced("a recovery by n1 left this manager out");
	await waitFor("the demotion", async () => state.calls.length > 0, { timeoutMs: 5000, intervalMs: 10 });
	t.same(state.calls, ["worker"], "fenced: it becomes a worker");
	t.equal(directory.version, 0, "its directory's old version is dropped");
	await sleep(100);
	t.same(state.calls, ["worker"], "the old directory (it says manager) does not pull it back");
	directory.set(directory.list(), 120); // the recovered cluster's, where autopilot promotes it afresh
	await waitFor("the promotion", async () => state.calls.length > 1, { timeoutMs: 5000, intervalMs: 10 });
	t.same(state.calls, ["worker", "manager"], "a directory of the recovered cluster is followed");
	await rc.stop();
});
