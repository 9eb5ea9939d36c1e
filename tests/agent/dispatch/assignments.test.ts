// A worker session gets exactly its own tasks: the full set on connect, then only what changed
// (added, desired state, moved, removed, its networks), never another node's, never status echoes.
import t from "tap";
import type { AssignmentSink } from "../../../agent/dispatch/index.ts";
import type { Worker } from "../../../agent/worker/index.ts";
import { waitFor } from "../../helpers/index.ts";
import {
	client,
	cluster,
	del,
	dispatcher,
	endpoint,
	host,
	network,
	nodeRec,
	openStore,
	put,
	status,
	storedTask,
	task,
	template,
} from "./fixtures.ts";

t.test("full set, then changes, only the node's own tasks", async (t) => {
	const {
		m,
		ws: [w1, w2],
		store,
	} = await cluster(t, 2);
	await put(store, "nodes", m.h.peerId, nodeRec(m, "manager"));
	await put(store, "networks", "net1", network("net1"));
	const a1 = task(w1.h.peerId, { networks: [{ networkId: "net1", addresses: ["198.19.1.5/24"], aliases: [] }] });
	const a2 = task(w1.h.peerId);
	const gone = task(w1.h.peerId, { desiredState: "remove" });
	const b1 = task(w2.h.peerId);
	const pending = task("", { nodeId: undefined, status: status("pending") });
	for (const x of [a1, a2, gone, b1, pending]) await put(store, "tasks", x.id, x);

	const e = await endpoint(t, m, store);
	await dispatcher(t, e, { heartbeatMs: 1000 });
	const one = client(t, w1, [m]);
	const two = client(t, w2, [m]);
	await waitFor("w1 connected", () => one.sink.isConnected);
	await waitFor("w2 connected", () => two.sink.isConnected);

	const full1 = one.sink.fulls()[0]!;
	t.same(full1.tasks.map((x) => x.id).sort(), [a1.id, a2.id].sort(), "w1's full set: its tasks, no more");
	t.same(full1.removed, [gone.id], "its task to remove is named as removed");
	t.same(
		full1.networks.map((n) => n.id),
		["net1"],
		"with the network its task uses",
	);
	t.same(
		two.sink.fulls()[0]!.tasks.map((x) => x.id),
		[b1.id],
		"w2's full set: only its own",
	);
	t.same(one.sink.connected, [false, true], "disconnected until the full set arrived");

	// Added.
	const a3 = task(w1.h.peerId);
	await put(store, "tasks", a3.id, a3);
	await waitFor("a3 arrives at w1", () => one.sink.tasks.has(a3.id));
	t.match(one.sink.got.at(-1), { full: false, tasks: [{ id: a3.id }], removed: [] }, "as a change, alone");

	// A status-only change (the worker wrote it) is not echoed; a desired-state change is sent.
	const before = one.sink.got.length;
	await put(store, "tasks", a2.id, { ...storedTask(store, a2.id), status: status("running") });
	await put(store, "tasks", a2.id, { ...storedTask(store, a2.id), desiredState: "shutdown" });
	await waitFor("the desired state arrives", () => one.sink.tasks.get(a2.id)?.desiredState === "shutdown");
	t.equal(one.sink.got.length, before + 1, "one change for the two writes: the status write sent nothing");

	// Moved to w2: removed at w1, added at w2.
	await put(store, "tasks", a3.id, { ...storedTask(store, a3.id), nodeId: w2.h.peerId });
	await waitFor("a3 leaves w1", () => !one.sink.tasks.has(a3.id));
	await waitFor("a3 reaches w2", () => two.sink.tasks.has(a3.id));
	t.match(one.sink.got.at(-1), { full: false, tasks: [], removed: [a3.id] });

	// Desired state remove, then the record deleted: removed once.
	await put(store, "tasks", a1.id, { ...storedTask(store, a1.id), desiredState: "remove" });
	await waitFor("a1 removed at w1", () => !one.sink.tasks.has(a1.id));
	const n = one.sink.got.length;
	await del(store, "tasks", a1.id);
	// Positive control for "nothing more was sent": a later change does arrive, and is the next one.
	const a4 = task(w1.h.peerId);
	await put(store, "tasks", a4.id, a4);
	await waitFor("a4 arrives", () => one.sink.tasks.has(a4.id));
	t.equal(one.sink.got.length, n + 1, "deleting an already removed task sent nothing");

	// A network change reaches the sessions that use it.
	await put(store, "networks", "net1", network("net1", { gateway: "198.19.1.254" }));
	await waitFor("w1 gets the changed network it uses", () =>
		one.sink.got.some((a) => a.networks.some((x) => x.gateway === "198.19.1.254")),
	);

	// Never another node's task, in anything either worker was sent.
	const own = (s: typeof one.sink, id: string) => s.got.flatMap((a) => a.tasks).every((x) => x.nodeId === id);
	t.ok(own(one.sink, w1.h.peerId), "w1 only ever got w1's tasks");
	t.ok(own(two.sink, w2.h.peerId), "w2 only ever got w2's tasks");
	t.notOk(
		two.sink.got.some((a) => a.networks.length > 0),
		"w2 never got a network none of its tasks uses",
	);
	t.notOk(
		[...one.sink.got, ...two.sink.got].some((a) => a.tasks.some((x) => x.id === pending.id)),
		"the unplaced task went nowhere",
	);
});

t.test("the worker on a manager talks to its own endpoint in-process", async (t) => {
	const m = await host(t);
	const store = await openStore(t, m, { bootstrap: true });
	await put(store, "nodes", m.h.peerId, nodeRec(m, "manager"));
	const mine = task(m.h.peerId);
	await put(store, "tasks", mine.id, mine);
	const e = await endpoint(t, m, store);
	const { d } = await dispatcher(t, e, { heartbeatMs: 100 });
	const self = client(t, m, [m], { local: e });
	await waitFor("connected", () => self.sink.isConnected);
	t.same(
		self.sink.fulls()[0]!.tasks.map((x) => x.id),
		[mine.id],
	);
	self.sink.report([{ taskId: mine.id, status: status("running") }]);
	await waitFor("its report is written", () => storedTask(store, mine.id).status.state === "running");
	// Heartbeats flow in-process too: the session outlives several deadlines.
	await new Promise((r) => setTimeout(r, 500));
	t.same(d.connected(), [m.h.peerId], "still connected after 5 heartbeat periods");
	t.match(store.get("nodes", m.h.peerId)?.value, { status: { state: "ready" } }, "and its node is ready");
});

t.test("a full set bigger than one frame arrives in chunks, handed over whole", async (t) => {
	const {
		m,
		ws: [w],
		store,
	} = await cluster(t, 1);
	// Over LIMITS.tasksPerFrame tasks, each with a large spec: more than one frame by count and by bytes.
	const spec = template({ env: [`PAD=${"e".repeat(2000)}`] });
	const many = Array.from({ length: 1500 }, () => task(w.h.peerId, { spec }));
	for (let i = 0; i < many.length; i += 500)
		await store.commit(
			many
				.slice(i, i + 500)
				.map((x) => ({ op: "create" as const, table: "tasks" as const, id: x.id, value: { ...x } })),
		);
	const e = await endpoint(t, m, store);
	await dispatcher(t, e, { heartbeatMs: 1000 });
	const { sink } = client(t, w, [m]);
	await waitFor("connected", () => sink.isConnected);
	t.equal(sink.got.length, 1, "one hand-over");
	t.equal(sink.fulls()[0]!.tasks.length, 1500, "with every task");
	t.equal(new Set(sink.fulls()[0]!.tasks.map((x) => x.id)).size, 1500, "each once");
});

t.test("agent/worker's Worker is an AssignmentSink", async (t) => {
	// Checked by tsc: the lead wires `new DispatcherClient({ sink: worker, ... })`.
	const asSink = (w: Worker): AssignmentSink => w;
	t.type(asSink, "function");
});
