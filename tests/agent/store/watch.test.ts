// watch(): filtered change events with their Raft index, resumable from a version out of a bounded
// ring (a loop restarted by a leader change misses nothing), refused with a named error when that
// version is too old, when the watcher falls behind, or when a snapshot replaces the state.
import { pack } from "msgpackr";
import t from "tap";
import { type ChangeEvent, type Op, StoreFSM, type Table } from "../../../agent/store/index.ts";
import type { LogEntry } from "../../../consensus/index.ts";
import { net, task } from "./fixtures.ts";

const entry = (index: number, ops: Op[]): LogEntry => ({ index, term: 1, type: "command", data: pack({ ops }) });

/** Takes `n` events from an iterator, failing after a deadline instead of hanging. */
async function take<T extends Table>(it: AsyncIterator<ChangeEvent<T>>, n: number, ms = 2000) {
	const out: ChangeEvent<T>[] = [];
	let timer: NodeJS.Timeout | undefined;
	const deadline = new Promise<never>((_, rej) => {
		timer = setTimeout(() => rej(new Error(`no event within ${ms} ms`)), ms);
	});
	try {
		while (out.length < n) {
			const r = await Promise.race([it.next(), deadline]);
			if (r.done) break;
			out.push(r.value);
		}
	} finally {
		clearTimeout(timer);
	}
	return out;
}

/** Applies a create of task `id` (on node `nodeId`) at `index`. */
const createTask = (fsm: StoreFSM, index: number, id: string, nodeId = "p1") =>
	fsm.apply(entry(index, [{ op: "create", table: "tasks", id, value: task(id, { nodeId }) }]));

t.test("events of one table, filtered, carry their raft index and the record's type", async (t) => {
	const fsm = new StoreFSM();
	const it = fsm.feed.watch({ table: "tasks", filter: (e) => e.record.value.nodeId === "p1" });
	createTask(fsm, 1, "a");
	fsm.apply(entry(2, [{ op: "create", table: "networks", id: "n", value: net("n", "app") }]));
	createTask(fsm, 3, "b", "p2");
	fsm.apply(
		entry(4, [
			{
				op: "update",
				table: "tasks",
				id: "a",
				version: 1,
				value: task("a", { nodeId: "p1", desiredState: "shutdown" }),
			},
		]),
	);
	const evs = await take(it, 2);
	t.same(
		evs.map((e) => [e.index, e.action, e.id, e.record.value.desiredState]),
		[
			[1, "create", "a", "running"],
			[4, "update", "a", "shutdown"],
		],
		"only p1's tasks, no network, each with its index",
	);
	t.equal(evs[1]?.previous?.value.desiredState, "running", "an update carries the record it replaced");
	await it.return?.();
	const all = fsm.feed.watch({}, { sinceVersion: 0 });
	t.same(
		(await take(all, 4)).map((e) => `${e.table}/${e.id}@${e.index}`),
		["tasks/a@1", "networks/n@2", "tasks/b@3", "tasks/a@4"],
		"without a table: every change",
	);
	await all.return?.();
});

t.test("a loop stopped part way resumes from the version it saw, missing nothing, seeing nothing twice", async (t) => {
	const fsm = new StoreFSM({ watchHistory: 100 });
	const first = fsm.feed.watch({ table: "tasks" }, { sinceVersion: 0 });
	for (let i = 1; i <= 3; i++) createTask(fsm, i, `t${i}`);
	const seen = await take(first, 2);
	await first.return?.(); // the leader changed: this loop stops
	const last = seen.at(-1)!.index;
	t.equal(last, 2);
	for (let i = 4; i <= 6; i++) createTask(fsm, i, `t${i}`);
	fsm.apply(entry(7, [{ op: "create", table: "tasks", id: "t1", value: task("t1") }])); // refused: no event
	const resumed = fsm.feed.watch({ table: "tasks" }, { sinceVersion: last });
	createTask(fsm, 8, "t8");
	t.same(
		(await take(resumed, 5)).map((e) => e.id),
		["t3", "t4", "t5", "t6", "t8"],
		"replayed from the ring, then live",
	);
	await resumed.return?.();
});

t.test("a version older than the ring is refused with ERR_WATCH_COMPACTED; the oldest kept one works", async (t) => {
	const fsm = new StoreFSM({ watchHistory: 4 });
	for (let i = 1; i <= 10; i++) createTask(fsm, i, `t${i}`);
	t.equal(fsm.feed.oldest, 6, "the ring keeps 7..10");
	t.throws(() => fsm.feed.watch({ table: "tasks" }, { sinceVersion: 2 }), {
		name: "WatchCompactedError",
		code: "ERR_WATCH_COMPACTED",
		floor: 6,
		message: /cannot watch from version 2: changes up to 6 are no longer kept; list again/,
	});
	const ok = fsm.feed.watch({ table: "tasks" }, { sinceVersion: 6 });
	t.same(
		(await take(ok, 4)).map((e) => e.index),
		[7, 8, 9, 10],
		"positive control: from the floor, everything after it",
	);
	await ok.return?.();
});

t.test("a watcher that falls a ring behind ends with ERR_WATCH_COMPACTED", async (t) => {
	const fsm = new StoreFSM({ watchHistory: 3 });
	const slow = fsm.feed.watch({ table: "tasks" });
	const fast = fsm.feed.watch({ table: "tasks" });
	createTask(fsm, 1, "a");
	t.equal((await take(fast, 1))[0]?.id, "a", "positive control: a reader keeping up gets its events");
	const kept: number[] = [];
	for (let i = 2; i <= 5; i++) {
		createTask(fsm, i, `t${i}`);
		kept.push(...(await take(fast, 1)).map((e) => e.index));
	}
	await t.rejects(slow.next(), { code: "ERR_WATCH_COMPACTED", message: /fell 3 changes behind/ });
	t.same(kept, [2, 3, 4, 5], "the watcher that keeps up is unaffected");
	await fast.return?.();
});

t.test(
	"installing a snapshot ends live watchers with ERR_WATCH_COMPACTED; watching resumes from its index",
	async (t) => {
		const src = new StoreFSM();
		for (let i = 1; i <= 3; i++) createTask(src, i, `t${i}`);
		const chunks: Uint8Array[] = [];
		await src
			.snapshot()
			.persist({ id: "s", write: async (c) => void chunks.push(c), close: async () => {}, cancel: async () => {} });

		const fsm = new StoreFSM();
		createTask(fsm, 1, "old");
		const live = fsm.feed.watch({ table: "tasks" }, { sinceVersion: 0 });
		t.equal((await take(live, 1))[0]?.id, "old");
		fsm.restore(Buffer.concat(chunks));
		await t.rejects(live.next(), { code: "ERR_WATCH_COMPACTED", message: /replaced by a snapshot at version 3/ });
		t.throws(() => fsm.feed.watch({ table: "tasks" }, { sinceVersion: 1 }), { code: "ERR_WATCH_COMPACTED" });
		const after = fsm.feed.watch({ table: "tasks" }, { sinceVersion: fsm.appliedIndex });
		createTask(fsm, 4, "t4");
		t.equal((await take(after, 1))[0]?.id, "t4", "a new watch from the snapshot's version works");
		t.same(
			fsm.state.find("tasks", { by: "nodeId", value: "p1" }).map((r) => r.id),
			["t1", "t2", "t3", "t4"],
			"the restored state's indexes were rebuilt",
		);
		await after.return?.();
	},
);

t.test("aborting the signal ends the iteration", async (t) => {
	const fsm = new StoreFSM();
	const ac = new AbortController();
	const got: string[] = [];
	const loop = (async () => {
		for await (const e of fsm.feed.watch({ table: "tasks" }, { signal: ac.signal })) {
			got.push(e.id);
			if (got.length === 2) ac.abort();
		}
		return "ended";
	})();
	createTask(fsm, 1, "a");
	createTask(fsm, 2, "b");
	createTask(fsm, 3, "c");
	t.equal(await loop, "ended");
	t.same(got, ["a", "b"], "the events before the abort arrived, none after");
	t.same(
		await take(fsm.feed.watch({ table: "tasks" }, { sinceVersion: 2, signal: ac.signal }), 5),
		[],
		"an already aborted signal gives an ended iterator",
	);
});
