// Status reports written in batches and checked (own task, forward only); heartbeats mark a node
// down and a new session ready; a stopped dispatcher's workers come back to the next one.
import t from "tap";
import type { ReportRefusedError } from "../../../agent/dispatch/index.ts";
import { clusterDispatchStore, type DispatchStore } from "../../../agent/manager/index.ts";
import { waitFor } from "../../helpers/index.ts";
import { client, cluster, dispatcher, endpoint, put, status, storedTask, task } from "./fixtures.ts";

t.test("status reports land in the store, batched; backwards and foreign reports are refused", async (t) => {
	const {
		m,
		ws: [w1, w2],
		store,
	} = await cluster(t, 2);
	const mine = Array.from({ length: 40 }, () => task(w1.h.peerId));
	const theirs = task(w2.h.peerId);
	await store.commit([...mine, theirs].map((x) => ({ op: "create", table: "tasks", id: x.id, value: { ...x } })));
	const e = await endpoint(t, m, store);
	const { d } = await dispatcher(t, e, { heartbeatMs: 1000, flushMs: 100, maxBatch: 100 });
	const refused: Array<{ nodeId: string; taskId: string; error: ReportRefusedError }> = [];
	const written: number[] = [];
	d.on("refused", (r) => refused.push(r));
	d.on("written", (w) => written.push(w.reports));
	const one = client(t, w1, [m]);
	await waitFor("w1 connected", () => one.sink.isConnected);

	// 40 reports in 4 batches from the worker: written in one or two transactions, not 40.
	for (let i = 0; i < 40; i += 10)
		one.sink.report(mine.slice(i, i + 10).map((x) => ({ taskId: x.id, status: status("running") })));
	await waitFor("all running", () => mine.every((x) => storedTask(store, x.id).status.state === "running"));
	t.ok(written.length <= 2, `40 reports in ${written.length} transaction(s)`);
	t.equal(
		written.reduce((a, b) => a + b, 0),
		40,
	);
	t.equal(storedTask(store, mine[0]!.id).desiredState, "running", "desired state untouched");
	t.match(storedTask(store, mine[0]!.id).spec, { container: { image: "busybox" } }, "the rest of the task too");

	// Backwards (running -> preparing) and another node's task: refused; a forward report in the
	// same frame is written (the positive control).
	const [x0, x1] = [mine[0]!, mine[1]!];
	one.sink.report([
		{ taskId: x0.id, status: status("preparing") },
		{ taskId: theirs.id, status: status("failed", "not yours") },
		{ taskId: "no-such-task", status: status("running") },
		{ taskId: x1.id, status: { ...status("complete"), exitCode: 0 } },
	]);
	await waitFor("x1 complete", () => storedTask(store, x1.id).status.state === "complete");
	await waitFor("three refusals", () => refused.length >= 3);
	t.equal(storedTask(store, x0.id).status.state, "running", "the backwards report was not written");
	t.equal(storedTask(store, theirs.id).status.state, "assigned", "nor the report for w2's task");
	t.equal(storedTask(store, x1.id).status.exitCode, 0);
	t.match(
		refused.map((r) => [r.taskId, r.error.code, r.error.message]),
		[
			[x0.id, "ERR_REPORT_REFUSED", /preparing is behind running/],
			[theirs.id, "ERR_REPORT_REFUSED", /not assigned to this node/],
			["no-such-task", "ERR_REPORT_REFUSED", /no such task/],
		],
	);
	t.ok(
		refused.every((r) => r.nodeId === w1.h.peerId && r.error.message.includes(w1.h.peerId)),
		"each refusal names the worker",
	);
});

t.test("a version conflict with a manager's write is re-read and retried", async (t) => {
	const {
		m,
		ws: [w],
		store,
	} = await cluster(t, 1);
	const x = task(w.h.peerId);
	await put(store, "tasks", x.id, x);
	// Before the dispatcher's first status write lands, a manager changes the desired state.
	const real = clusterDispatchStore(store);
	let conflicts = 0;
	const racing: DispatchStore = {
		...real,
		async updateTasks(updates, signal) {
			if (conflicts === 0) await put(store, "tasks", x.id, { ...storedTask(store, x.id), desiredState: "shutdown" });
			try {
				return await real.updateTasks(updates, signal);
			} catch (err) {
				if ((err as { code?: string }).code === "ERR_VERSION_CONFLICT") conflicts++;
				throw err;
			}
		},
	};
	const e = await endpoint(t, m, racing);
	await dispatcher(t, e, { heartbeatMs: 1000 });
	const { sink } = client(t, w, [m]);
	await waitFor("connected", () => sink.isConnected);
	sink.report([{ taskId: x.id, status: status("shutdown") }]);
	await waitFor("written", () => storedTask(store, x.id).status.state === "shutdown");
	t.equal(conflicts, 1, "the first write met the conflict");
	t.equal(storedTask(store, x.id).desiredState, "shutdown", "the manager's write survived the status write");
});

t.test("heartbeats stop: the node is down within the deadline; a new session: ready", async (t) => {
	const {
		m,
		ws: [w],
		store,
	} = await cluster(t, 1);
	const e = await endpoint(t, m, store);
	const heartbeatMs = 100;
	const { d } = await dispatcher(t, e, { heartbeatMs, missedHeartbeats: 3 });
	const states: Array<{ state: string; at: number }> = [];
	d.on("node", (n) => states.push({ state: n.state, at: Date.now() }));
	const nodeState = () => (store.get("nodes", w.h.peerId)?.value.status as { state?: string } | undefined)?.state;

	const first = client(t, w, [m]);
	await waitFor("ready", () => nodeState() === "ready");
	// Positive control: with heartbeats flowing the node stays ready well past the deadline.
	await waitFor("10 periods pass", () => Date.now() - states[0]!.at > 10 * heartbeatMs);
	t.equal(nodeState(), "ready", "still ready after 10 heartbeat periods");

	const stoppedAt = Date.now();
	await first.c.stop();
	await waitFor("down", () => nodeState() === "down", { timeoutMs: 5000 });
	const after = Date.now() - stoppedAt;
	t.ok(
		after <= 3 * heartbeatMs + 1500,
		`down ${after} ms after the last session ended (deadline ${3 * heartbeatMs} ms)`,
	);
	t.match(store.get("nodes", w.h.peerId)?.value, { status: { state: "down", message: "heartbeat failure" } });
	t.match(states.at(-1), { state: "down" }, "and a node event said so");

	const second = client(t, w, [m]);
	await waitFor("ready again", () => nodeState() === "ready");
	await waitFor("connected", () => second.sink.isConnected);
	t.same(
		states.map((s) => s.state),
		["ready", "down", "ready"],
	);
});

t.test("the dispatcher stops: the worker reconnects to the next one and gets its full set again", async (t) => {
	const {
		m,
		ws: [w],
		store,
	} = await cluster(t, 1);
	const mine = [task(w.h.peerId), task(w.h.peerId)];
	for (const x of mine) await put(store, "tasks", x.id, x);
	const e = await endpoint(t, m, store);
	const first = await dispatcher(t, e, { heartbeatMs: 1000 });
	const { c, sink } = client(t, w, [m]);
	await waitFor("connected", () => sink.isConnected);

	first.stop();
	await waitFor("the sink hears it is disconnected", () => !sink.isConnected);
	// While no dispatcher runs, the worker keeps its tasks and its reports wait: the report is given
	// to the client, which flushes it (20 ms) with no session up, and then retries (and is refused).
	const refusedAt: number[] = [];
	c.on("disconnected", ({ error }) => {
		if ((error as { serverCode?: string }).serverCode === "ERR_NO_DISPATCHER") refusedAt.push(Date.now());
	});
	const reportedAt = Date.now();
	sink.report([{ taskId: mine[0]!.id, status: status("running") }]);
	await waitFor("a retry refused well after the flush", () => refusedAt.some((at) => at > reportedAt + 100));
	const added = task(w.h.peerId);
	await put(store, "tasks", added.id, added);

	const second = await dispatcher(t, e, { heartbeatMs: 1000 });
	await waitFor("connected again", () => sink.isConnected);
	t.equal(sink.fulls().length, 2, "a second full set");
	t.same(
		sink
			.fulls()[1]!
			.tasks.map((x) => x.id)
			.sort(),
		[...mine.map((x) => x.id), added.id].sort(),
		"with what changed meanwhile",
	);
	t.same(second.d.connected(), [w.h.peerId]);
	t.equal(c.manager, m.h.peerId);
	await waitFor(
		"the waiting report is resent and written",
		() => storedTask(store, mine[0]!.id).status.state === "running",
	);
	t.same(sink.connected.slice(-3), [true, false, true]);
});
