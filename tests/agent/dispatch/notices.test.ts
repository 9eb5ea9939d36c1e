// Directory notices: when autopilot changes a node's record role, the leader's dispatch session
// tells that node at once and its DirectorySync looks now, not at its next poll. A worker whose
// hello does not take the notice (an old one) gets none; a message type a worker does not know is ignored.
import t from "tap";
import { DISPATCH_PROTOCOL } from "../../../agent/dispatch/index.ts";
import { DirectorySync, NodeDirectory, type NodeRecord } from "../../../agent/nodes/index.ts";
import type { ClusterStore } from "../../../agent/store/index.ts";
import { waitFor } from "../../helpers/index.ts";
import {
	client,
	cluster,
	dispatcher,
	endpoint,
	host,
	meet,
	nodeRec,
	put,
	quiet,
	raw,
	type TestHost,
} from "./fixtures.ts";

const NODES_PROTOCOL = "/tsswarm-test/manager/1";

/** The manager's nodes.list, as agent/manager answers it: the store's nodes at their last version. */
async function serveNodes(m: TestHost, store: ClusterStore): Promise<void> {
	await m.h.handle(NODES_PROTOCOL, (_msg, ctx) => {
		const recs = store.list("nodes");
		ctx.send({
			ok: {
				version: Math.max(...recs.map((r) => r.version)),
				nodes: recs.map(({ value: v }) => ({ id: v.id, role: v.role, addr: v.addr })),
			},
		});
	});
}

/** Replace a node record; the dispatcher writes its status meanwhile, so a conflict is read again. */
async function setNode(store: ClusterStore, value: NodeRecord): Promise<void> {
	for (let i = 0; ; i++) {
		try {
			return await put(store, "nodes", value.id, { ...value, status: store.get("nodes", value.id)?.value.status });
		} catch (err) {
			if ((err as { code?: string }).code !== "ERR_VERSION_CONFLICT" || i >= 5) throw err;
		}
	}
}

t.test("a record role change reaches the node well under its poll interval", async (t) => {
	const {
		m,
		ws: [w],
		store,
	} = await cluster(t, 1);
	await put(store, "nodes", m.h.peerId, nodeRec(m, "manager"));
	await serveNodes(m, store);
	const e = await endpoint(t, m, store);
	await dispatcher(t, e, { heartbeatMs: 200 });

	// The worker's directory, polled once a minute: only the notice can make it look sooner.
	const directory = new NodeDirectory();
	directory.set([{ id: m.h.peerId, role: "manager", addr: m.addr }], 0, false);
	const sync = new DirectorySync({
		host: w.h,
		directory,
		protocol: NODES_PROTOCOL,
		logger: quiet,
		intervalMs: 60_000,
		minGapMs: 100,
	});
	sync.start();
	t.teardown(() => sync.stop());
	await waitFor("the first refresh", () => directory.get(w.h.peerId)?.role === "worker");
	const { c, sink } = client(t, w, [m]);
	const notices: number[] = [];
	c.on("directory", ({ version }) => {
		notices.push(version);
		sync.changedAt(version);
	});
	await waitFor("connected", () => sink.isConnected);

	// A change that is not a role change: no notice (the positive control follows).
	await setNode(store, { ...nodeRec(w, "worker"), labels: { zone: "a" } });
	const t0 = Date.now();
	await setNode(store, { ...nodeRec(w, "manager"), labels: { zone: "a" } });
	const version = store.get("nodes", w.h.peerId)!.version;
	await waitFor("the node's directory says manager", () => directory.get(w.h.peerId)?.role === "manager", {
		timeoutMs: 10_000,
	});
	const ms = Date.now() - t0;
	t.ok(ms < 3000, `the role change reached the node in ${ms} ms (its poll: 60 s, the agent's: 5 s)`);
	t.same(notices, [version], "one notice, for the role change only, at the record's version");
	t.equal(directory.version, version, "the directory is the one of that version");

	// And back: the demotion is told too.
	await setNode(store, { ...nodeRec(w, "worker"), labels: { zone: "a" } });
	await waitFor("the node's directory says worker", () => directory.get(w.h.peerId)?.role === "worker", {
		timeoutMs: 3000,
	});
	t.equal(notices.length, 2);
});

t.test("a worker whose hello takes no notices (an old one) gets none, and keeps its session", async (t) => {
	const {
		m,
		ws: [w],
		store,
	} = await cluster(t, 1);
	const e = await endpoint(t, m, store);
	await dispatcher(t, e, { heartbeatMs: 200 });
	const old = await raw(w, m);
	old.send({ t: "hello", sessionId: "old-1" });
	await waitFor("session", () => old.frames.some((f) => (f as { t: string }).t === "session"));
	await setNode(store, nodeRec(w, "manager"));
	// Heartbeats answered after the change: the session lives on, and no directory frame came.
	const seen = old.frames.length;
	old.send({ t: "heartbeat" });
	await waitFor("a heartbeat answered", () =>
		old.frames.slice(seen).some((f) => (f as { t: string }).t === "heartbeat"),
	);
	t.same(
		old.frames.filter((f) => (f as { t: string }).t === "directory"),
		[],
		"no directory notice to a worker that did not ask for it",
	);
	t.notOk(
		old.frames.some((f) => (f as { t: string }).t === "error"),
		"and no error",
	);
});

t.test("a message type the worker does not know is ignored; the session stays up", async (t) => {
	const fake = await host(t);
	const w = await host(t);
	meet(fake, w);
	const hellos: unknown[] = [];
	await fake.h.handle(DISPATCH_PROTOCOL, (msg, ctx) => {
		const m = msg as { t: string; sessionId: string };
		if (m.t === "heartbeat") ctx.send({ t: "heartbeat" });
		if (m.t !== "hello") return;
		hellos.push(msg);
		ctx.send({ t: "session", sessionId: m.sessionId, heartbeatMs: 200 });
		ctx.send({ t: "assignments", full: true, tasks: [] });
		ctx.send({ t: "from-the-future", anything: [1, 2, 3] });
		ctx.send({ t: "directory", version: 7 });
	});
	const { c, sink } = client(t, w, [fake]);
	const refused: string[] = [];
	const notices: number[] = [];
	let disconnects = 0;
	c.on("refused", ({ error }) => refused.push(error.message));
	c.on("directory", ({ version }) => notices.push(version));
	c.on("disconnected", () => disconnects++);
	await waitFor("the notice after the unknown frame", () => notices.length > 0);
	t.same(notices, [7]);
	t.ok(sink.isConnected);
	t.same(refused, [], "nothing refused");
	t.equal(disconnects, 0, "the session was not dropped");
	t.match(hellos, [{ t: "hello", notices: ["directory"] }], "the hello names the notices this worker takes");
});
