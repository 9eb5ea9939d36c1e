// agent/manager/leader.ts: a new leader's loops start only after a barrier (its state machine has
// applied what earlier terms committed), and a failed barrier is retried, not skipped.
import { EventEmitter } from "node:events";
import t from "tap";
import { LeaderLoops } from "../../../agent/manager/leader.ts";
import { waitFor } from "../../helpers/index.ts";

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

function source() {
	const s = Object.assign(new EventEmitter(), {
		leader: false,
		barriers: 0,
		release: undefined as (() => void) | undefined,
		fail: false,
		isLeader: () => s.leader,
		barrier: () => {
			s.barriers++;
			if (s.fail) return Promise.reject(new Error("no quorum"));
			return new Promise<void>((r) => {
				s.release = r;
			});
		},
	});
	return s;
}

t.test("the loops wait for the barrier", async (t) => {
	const src = source();
	const ran: number[] = [];
	const loops = new LeaderLoops(
		src,
		[
			{
				name: "probe",
				run: (signal) =>
					new Promise((r) => {
						ran.push(Date.now());
						signal.addEventListener("abort", () => r());
					}),
			},
		],
		quiet,
	);
	loops.start();
	src.leader = true;
	src.emit("leader");
	await waitFor("the barrier asked", async () => src.barriers > 0, { timeoutMs: 5000, intervalMs: 10 });
	await new Promise((r) => setTimeout(r, 300));
	t.same(ran, [], "no loop runs while the barrier is pending");
	src.release?.();
	await waitFor("the loop to run", async () => ran.length === 1, { timeoutMs: 5000, intervalMs: 10 });
	t.pass("once the barrier is applied, the loops run");
	await loops.stop();
});

t.test("a failed barrier is tried again at the next check", async (t) => {
	const src = source();
	src.fail = true;
	let ran = 0;
	const loops = new LeaderLoops(
		src,
		[
			{
				name: "probe",
				run: (signal) =>
					new Promise((r) => {
						ran++;
						signal.addEventListener("abort", () => r());
					}),
			},
		],
		quiet,
	);
	src.leader = true;
	loops.start();
	await waitFor("two barrier attempts", async () => src.barriers >= 2, { timeoutMs: 5000, intervalMs: 10 });
	t.equal(ran, 0, "no loop ran on a failed barrier");
	src.fail = false;
	await waitFor("a barrier that succeeds", async () => src.release !== undefined, { timeoutMs: 5000, intervalMs: 10 });
	src.release?.();
	await waitFor("the loop to run", async () => ran === 1, { timeoutMs: 5000, intervalMs: 10 });
	t.pass("then the loops run");
	await loops.stop();
});
