// /tsswarm/logs/1: the messages' checks on both ends, the frame bounds, and the protocol between
// real libp2p hosts: only managers are answered, a task that is not the node's is refused by
// name, following streams until the asker goes, and a node that cannot be reached is named.
import t from "tap";
import {
	BadLogsMessageError,
	FrameBatcher,
	LIMITS,
	LOGS_PROTOCOL,
	type LogLine,
	type LogSource,
	logsClient,
	NodeUnreachableError,
	parseAskerMessage,
	parseNodeMessage,
	RemoteLogsError,
	serveLogs,
	splitLine,
} from "../../../agent/logs/index.ts";
import { waitFor } from "../../helpers/index.ts";
import { host, meet, quiet, type TestHost } from "../dispatch/fixtures.ts";

const line = (log: string, i = 0): LogLine => ({
	stream: "stdout",
	time: `2026-12-04T10:00:${String(i % 60).padStart(2, "0")}.000000001Z`,
	log,
});

const codeOf = (f: () => unknown) => {
	try {
		f();
		return "accepted";
	} catch (err) {
		return err instanceof BadLogsMessageError ? `${err.code}: ${err.message}` : String(err);
	}
};

t.test("requests: known fields only, each bounded", async (t) => {
	const ok = { t: "logs", taskId: "abc123", follow: true, tail: 10, since: "10m" };
	t.same(parseAskerMessage("p", ok), ok, "a whole request passes");
	t.same(parseAskerMessage("p", { t: "ping" }), { t: "ping" }, "a ping passes");
	const bad: Array<[string, unknown, RegExp]> = [
		["not an object", [1], /expected an object/],
		["unknown type", { t: "tail" }, /unknown message type "tail"/],
		["unknown field", { ...ok, cmd: "rm -rf" }, /unknown field "cmd"/],
		["path in taskId", { ...ok, taskId: "../etc" }, /taskId must be/],
		["long taskId", { ...ok, taskId: "a".repeat(LIMITS.taskIdChars + 1) }, /taskId must be/],
		["follow not boolean", { ...ok, follow: "yes" }, /follow must be/],
		["negative tail", { ...ok, tail: -1 }, /tail must be an integer/],
		["huge tail", { ...ok, tail: LIMITS.maxTail + 1 }, /tail must be an integer/],
		["since with spaces", { ...ok, since: "1 day" }, /since must be/],
		["ping with payload", { t: "ping", x: 1 }, /unknown field "x"/],
	];
	for (const [what, raw, re] of bad) {
		const r = codeOf(() => parseAskerMessage("peerA", raw));
		t.match(r, /^ERR_BAD_LOGS_MESSAGE: bad \/tsswarm\/logs\/1 message from peerA: /, `${what}: refused by name`);
		t.match(r, re, `${what}: says why`);
	}
});

t.test("answers: entries bounded, errors with a code, nothing else", async (t) => {
	t.same(parseNodeMessage("n", { t: "entries", entries: [line("hi\n")] }).t, "entries", "entries pass");
	t.same(parseNodeMessage("n", { t: "end" }), { t: "end" }, "end passes");
	t.same(
		parseNodeMessage("n", { t: "error", code: "ERR_X", message: "m".repeat(5000) }),
		{ t: "error", code: "ERR_X", message: "m".repeat(LIMITS.messageChars) },
		"an error's message is cut to its bound",
	);
	const many = Array.from({ length: LIMITS.entriesPerFrame + 1 }, (_, i) => line("x", i));
	const bad: Array<[string, unknown, RegExp]> = [
		["empty entries", { t: "entries", entries: [] }, /non-empty list/],
		["too many entries", { t: "entries", entries: many }, /more than 512 entries/],
		["a long line", { t: "entries", entries: [line("x".repeat(LIMITS.lineChars + 1))] }, /at most 16384 characters/],
		["bad stream", { t: "entries", entries: [{ ...line("x"), stream: "stdin" }] }, /stream must be/],
		["bad time", { t: "entries", entries: [{ ...line("x"), time: "yesterday" }] }, /RFC 3339/],
		["extra field in an entry", { t: "entries", entries: [{ ...line("x"), attrs: {} }] }, /entry 0: unknown field/],
		["lowercase code", { t: "error", code: "oops", message: "m" }, /error needs a code/],
		["unknown type", { t: "entry" }, /unknown message type/],
	];
	for (const [what, raw, re] of bad) {
		const r = codeOf(() => parseNodeMessage("nodeB", raw));
		t.match(r, /^ERR_BAD_LOGS_MESSAGE: bad \/tsswarm\/logs\/1 message from nodeB: /, `${what}: refused by name`);
		t.match(r, re, `${what}: says why`);
	}
});

t.test("frames: long lines split, batches within count and bytes", async (t) => {
	const long = line("y".repeat(LIMITS.lineChars * 2 + 5));
	const parts = splitLine(long);
	t.same(
		parts.map((p) => p.log.length),
		[LIMITS.lineChars, LIMITS.lineChars, 5],
		"a long line becomes bounded parts",
	);
	t.equal(parts.map((p) => p.log).join(""), long.log, "nothing lost");
	const b = new FrameBatcher();
	const frames: LogLine[][] = [];
	for (let i = 0; i < 2000; i++) frames.push(...b.add(line(`line ${i}\n`, i)));
	for (let i = 0; i < 40; i++) frames.push(...b.add(line("z".repeat(LIMITS.lineChars), i)));
	frames.push(b.take()!);
	t.ok(
		frames.every((f) => f.length <= LIMITS.entriesPerFrame),
		"no frame over the entry count",
	);
	t.ok(
		frames.every((f) => f.reduce((n, e) => n + e.log.length, 0) <= LIMITS.frameBytes),
		"no frame over the byte budget",
	);
	t.equal(frames.flat().length, 2040, "every line in some frame");
	for (const f of frames) t.doesNotThrow(() => parseNodeMessage("self", { t: "entries", entries: f }));
});

/** A node serving logs of task "t1" from memory; `follow` adds a line every 50 ms until aborted. */
async function node(t: Parameters<typeof host>[0], managers: Set<string>) {
	const n = await host(t);
	const reads: Array<{ taskId: string; aborted: () => boolean }> = [];
	const source: LogSource = (taskId, o) => {
		if (taskId !== "t1") return undefined;
		reads.push({ taskId, aborted: () => o.signal.aborted });
		return (async function* () {
			const all = Array.from({ length: 1500 }, (_, i) => line(`old ${i}\n`, i));
			yield* o.tail === undefined ? all : all.slice(all.length - o.tail);
			for (let i = 0; o.follow && !o.signal.aborted; i++) {
				await new Promise((r) => setTimeout(r, 50));
				yield line(`new ${i}\n`, i);
			}
		})();
	};
	const stop = await serveLogs({
		host: n.h,
		directory: { isManager: (id) => managers.has(id) },
		source,
		self: n.h.peerId,
		logger: quiet,
	});
	t.teardown(stop);
	return { ...n, reads };
}

/** What a fetch rejects with (undefined when it resolves). */
const failure = (p: Promise<void>) =>
	p.then(
		() => undefined,
		(e: Error & { code?: string }) => e,
	);

function asker(a: TestHost, target: TestHost, o: { connectMs?: number } = {}) {
	return logsClient({
		host: a.h,
		directory: { get: (id) => (id === target.h.peerId ? { addr: target.addr } : undefined) },
		self: a.h.peerId,
		local: () => undefined,
		...o,
	});
}

t.test("between hosts: managers read, workers are refused, foreign tasks named", async (t) => {
	const managers = new Set<string>();
	const w = await node(t, managers);
	const m = await host(t);
	const worker = await host(t);
	meet(w, m, worker);
	managers.add(m.h.peerId);
	const got: LogLine[] = [];
	await asker(m, w)(w.h.peerId, { taskId: "t1", follow: false }, (l) => got.push(...l), AbortSignal.timeout(10_000));
	t.equal(got.length, 1500, "a manager gets the whole log, over several frames");
	t.same(got.at(-1)?.log, "old 1499\n", "in order");
	const tail: LogLine[] = [];
	await asker(m, w)(
		w.h.peerId,
		{ taskId: "t1", follow: false, tail: 3 },
		(l) => tail.push(...l),
		AbortSignal.timeout(10_000),
	);
	t.same(
		tail.map((e) => e.log),
		["old 1497\n", "old 1498\n", "old 1499\n"],
		"--tail travels",
	);

	const refusal = await failure(
		asker(worker, w)(w.h.peerId, { taskId: "t1", follow: false }, () => {}, AbortSignal.timeout(10_000)),
	);
	t.ok(refusal instanceof RemoteLogsError, "a worker (a member, not a manager) is refused");
	t.equal((refusal as RemoteLogsError).code, "ERR_LOGS_NOT_MANAGER", "by name");
	t.equal(w.reads.length, 2, "and nothing was read for it (control: the manager's two reads)");

	const foreign = await failure(
		asker(m, w)(w.h.peerId, { taskId: "t2", follow: false }, () => {}, AbortSignal.timeout(10_000)),
	);
	t.equal(
		(foreign as RemoteLogsError)?.code,
		"ERR_TASK_NOT_ON_NODE",
		"a task that is not the node's is refused by name",
	);
	t.match(foreign?.message ?? "", /task t2 has no container on node/);
});

t.test("between hosts: follow streams new lines and stops when the asker goes", async (t) => {
	const managers = new Set<string>();
	const w = await node(t, managers);
	const m = await host(t);
	meet(w, m);
	managers.add(m.h.peerId);
	const got: LogLine[] = [];
	const ac = new AbortController();
	const done = asker(m, w)(w.h.peerId, { taskId: "t1", follow: true, tail: 0 }, (l) => got.push(...l), ac.signal);
	await waitFor("three new lines while following", () => got.filter((e) => e.log.startsWith("new")).length >= 3, {
		timeoutMs: 10_000,
	});
	t.notOk(
		got.some((e) => e.log.startsWith("old")),
		"--tail 0: only lines written since",
	);
	t.notOk(w.reads[0]!.aborted(), "control: the node still reads while the asker listens");
	ac.abort();
	await done;
	await waitFor("the node to stop reading", () => w.reads[0]!.aborted(), { timeoutMs: 10_000 });
	t.pass("the node's read ends with the asker's stream");
});

t.test("an unreachable node is named within bounded time", async (t) => {
	const managers = new Set<string>();
	const w = await node(t, managers);
	const m = await host(t);
	meet(w, m);
	managers.add(m.h.peerId);
	// Control: reachable first.
	await asker(m, w)(w.h.peerId, { taskId: "t1", follow: false, tail: 1 }, () => {}, AbortSignal.timeout(10_000));
	await w.h.stop();
	const t0 = Date.now();
	const err = await failure(
		asker(m, w, { connectMs: 2000 })(w.h.peerId, { taskId: "t1", follow: true }, () => {}, AbortSignal.timeout(30_000)),
	);
	t.ok(err instanceof NodeUnreachableError, "a stopped node is NodeUnreachableError");
	t.equal((err as NodeUnreachableError).code, "ERR_NODE_UNREACHABLE");
	t.ok(Date.now() - t0 < 10_000, "within the connect bound, not a hang");
	const unknown = await failure(
		asker(m, w)("12D3KooWNotInTheDirectory", { taskId: "t1", follow: false }, () => {}, AbortSignal.timeout(5000)),
	);
	t.match(unknown?.message ?? "", /not in the node directory/, "a node the directory does not know is named too");
});

t.test("a node that accepts the stream and never answers is given up, not waited for", async (t) => {
	const silent = await host(t);
	const m = await host(t);
	meet(silent, m);
	// It serves the protocol but says nothing (a wedged agent, or a cut-off one mid-stream).
	await silent.h.handle(LOGS_PROTOCOL, () => {});
	const t0 = Date.now();
	const err = await failure(
		asker(m, silent, { connectMs: 500 })(
			silent.h.peerId,
			{ taskId: "t1", follow: true },
			() => {},
			AbortSignal.timeout(30_000),
		),
	);
	t.ok(err instanceof NodeUnreachableError, "NodeUnreachableError");
	t.match(err?.message ?? "", /no answer within 500 ms/, "says why");
	t.ok(Date.now() - t0 < 5000, `given up after ${Date.now() - t0} ms`);
});

t.test("the protocol id", async (t) => {
	t.equal(LOGS_PROTOCOL, "/tsswarm/logs/1");
});
