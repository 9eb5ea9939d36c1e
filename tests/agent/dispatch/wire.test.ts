// The wire: a follower sends the worker to the leader; garbage from a worker or from a manager is
// refused with a named error naming the peer, and both ends keep working.
import t from "tap";
import { DISPATCH_PROTOCOL, LIMITS } from "../../../agent/dispatch/index.ts";
import { waitFor } from "../../helpers/index.ts";
import {
	client,
	cluster,
	dispatcher,
	endpoint,
	host,
	meet,
	nodeRec,
	openStore,
	put,
	raw,
	status,
	storedTask,
	task,
} from "./fixtures.ts";

t.test("a follower redirects the worker to the leader", async (t) => {
	const a = await host(t);
	const b = await host(t);
	const w = await host(t);
	meet(a, b, w);
	const leader = await openStore(t, a, { bootstrap: true });
	const follower = await openStore(t, b, { bootstrap: false });
	await leader.addVoter(b.h.peerId, b.h.addrs()[0]!);
	await waitFor("the follower knows the leader", () => follower.leader()?.id === a.h.peerId);
	for (const [h, role] of [
		[a, "manager"],
		[b, "manager"],
		[w, "worker"],
	] as const)
		await put(leader, "nodes", h.h.peerId, nodeRec(h, role));
	const x = task(w.h.peerId);
	await put(leader, "tasks", x.id, x);
	await waitFor("replicated", () => follower.get("tasks", x.id));
	const ea = await endpoint(t, a, leader);
	await endpoint(t, b, follower);
	const { d } = await dispatcher(t, ea, { heartbeatMs: 1000 });

	// The worker knows only the follower.
	const { c, sink } = client(t, w, [b]);
	await waitFor("connected", () => sink.isConnected);
	t.equal(c.manager, a.h.peerId, "the session is with the leader");
	t.same(d.connected(), [w.h.peerId]);
	t.same(
		sink.fulls()[0]!.tasks.map((y) => y.id),
		[x.id],
	);
	sink.report([{ taskId: x.id, status: status("running") }]);
	await waitFor("written through the leader, seen on the follower", () => {
		const v = follower.get("tasks", x.id)?.value as { status?: { state?: string } } | undefined;
		return v?.status?.state === "running";
	});
});

t.test("garbage from a worker is refused, named, and the dispatcher keeps serving", async (t) => {
	const {
		m,
		ws: [w],
		store,
	} = await cluster(t, 1);
	const x = task(w.h.peerId);
	await put(store, "tasks", x.id, x);
	const e = await endpoint(t, m, store);
	await dispatcher(t, e, { heartbeatMs: 1000 });
	const hello = { t: "hello", sessionId: "s1" };
	const tooMany = Array.from({ length: LIMITS.reportsPerFrame + 1 }, () => ({
		taskId: x.id,
		status: status("running"),
	}));
	const cases: Array<[string, unknown[], RegExp]> = [
		["an unknown type", [{ t: "drop-tables" }], /unknown message type "drop-tables"/],
		["not an object", ["garbage"], /expected an object/],
		[
			"status before hello",
			[{ t: "status", reports: [{ taskId: x.id, status: status("running") }] }],
			/status before hello/,
		],
		["hello without a session id", [{ t: "hello" }], /hello needs a sessionId/],
		["a second hello", [hello, hello], /hello sent twice/],
		[
			"an unknown state",
			[hello, { t: "status", reports: [{ taskId: x.id, status: status("dancing" as "running") }] }],
			/unknown state "dancing"/,
		],
		[
			"a node id field",
			[hello, { t: "status", reports: [{ taskId: x.id, status: { ...status("running"), nodeId: "me" } }] }],
			/unknown field "nodeId"/,
		],
		["too many reports", [hello, { t: "status", reports: tooMany }], /more than 1000 reports/],
		[
			"an oversized message",
			[
				hello,
				{ t: "status", reports: [{ taskId: x.id, status: { ...status("running"), message: "x".repeat(5000) } }] },
			],
			/message must be a string of at most/,
		],
	];
	for (const [what, msgs, why] of cases) {
		const before = m.refused.length;
		const s = await raw(w, m);
		for (const msg of msgs) s.send(msg);
		const r = await waitFor(`${what} refused`, () =>
			m.refused.slice(before).find((x) => x.protocol === DISPATCH_PROTOCOL),
		);
		t.match(
			r,
			{ peer: w.h.peerId, name: "BadDispatchMessageError", code: "ERR_BAD_DISPATCH_MESSAGE" },
			`${what}: named`,
		);
		t.match(r.message, why, `${what}: says what was wrong`);
		t.ok(r.message.includes(w.h.peerId), "and names the peer");
		const answer = await waitFor(`${what}: the worker is told`, () =>
			s.frames.find((f) => (f as { t?: string }).t === "error"),
		);
		t.match(answer, { t: "error", code: "ERR_BAD_DISPATCH_MESSAGE" });
		s.stream.abort(new Error("done"));
	}
	// Undecodable bytes: refused by the host's frame decoder, named.
	const before = m.refused.length;
	const s = await raw(w, m);
	s.bytes(Buffer.from([0, 0, 0, 4, 0xc1, 0xc1, 0xc1, 0xc1]));
	const r = await waitFor("garbage bytes refused", () =>
		m.refused.slice(before).find((x) => x.protocol === DISPATCH_PROTOCOL),
	);
	t.match(r, { peer: w.h.peerId, name: "InvalidMessageError" });
	t.equal(storedTask(store, x.id).status.state, "assigned", "nothing written");

	// A member with no node record (removed, or not registered yet) gets no session.
	const stranger = await host(t);
	meet(m, stranger);
	const before2 = m.refused.length;
	const s2 = await raw(stranger, m);
	s2.send(hello);
	const r2 = await waitFor("the unknown node refused", () =>
		m.refused.slice(before2).find((x) => x.protocol === DISPATCH_PROTOCOL),
	);
	t.match(r2, { peer: stranger.h.peerId, name: "UnknownNodeError", code: "ERR_UNKNOWN_NODE" });
	await waitFor("told so", () => s2.frames.find((f) => (f as { code?: string }).code === "ERR_UNKNOWN_NODE"));

	// Positive control: a real worker still gets its session and its report is written.
	const { sink } = client(t, w, [m]);
	await waitFor("connected", () => sink.isConnected);
	sink.report([{ taskId: x.id, status: status("running") }]);
	await waitFor("written", () => storedTask(store, x.id).status.state === "running");
});

t.test("a manager that sends garbage or another node's task is refused by the worker", async (t) => {
	const fake = await host(t);
	const w = await host(t);
	const other = await host(t);
	meet(fake, w);
	const theirs = task(other.h.peerId);
	const ours = task(w.h.peerId);
	// Each session gets the next script: a foreign task, garbage, then an honest full set.
	const scripts: Array<(sessionId: string) => unknown[]> = [
		(sessionId) => [
			{ t: "session", sessionId, heartbeatMs: 200 },
			{ t: "assignments", full: true, tasks: [ours, theirs] },
		],
		(sessionId) => [{ t: "session", sessionId, heartbeatMs: 5 }],
		() => [{ t: "redirect", leader: { id: "x", addr: "not-an-address" } }],
		(sessionId) => [
			{ t: "session", sessionId, heartbeatMs: 200 },
			{ t: "assignments", full: true, tasks: [ours] },
		],
	];
	let n = 0;
	await fake.h.handle(DISPATCH_PROTOCOL, (msg, ctx) => {
		const m = msg as { t: string; sessionId: string };
		if (m.t !== "hello") return;
		for (const f of scripts[Math.min(n, scripts.length - 1)]!(m.sessionId)) ctx.send(f);
		n++;
	});
	const { c, sink } = client(t, w, [fake]);
	const refused: Array<{ peer: string; name: string; message: string }> = [];
	c.on("refused", ({ peer, error }) => refused.push({ peer, name: error.name, message: error.message }));
	await waitFor("connected to the honest session", () => sink.isConnected, { timeoutMs: 15_000 });
	t.match(
		refused.map((r) => r.message),
		[/is assigned to .*, not to this node/, /heartbeatMs must be an integer from 50/, /redirect needs leader/],
	);
	t.ok(
		refused.every(
			(r) => r.peer === fake.h.peerId && r.name === "BadDispatchMessageError" && r.message.includes(fake.h.peerId),
		),
		"each named, naming the manager",
	);
	t.same(
		sink.got.map((a) => a.tasks.map((x) => x.id)),
		[[ours.id]],
		"the sink got only the honest full set: never the foreign task, not even ours from the bad frame",
	);
});
