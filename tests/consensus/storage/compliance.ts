// One contract, every implementation: the same checks run against the in-memory and durable stores.
import type { Test } from "tap";
import type { LogEntry, LogStore, SnapshotStore, StableStore } from "../../../consensus/index.ts";

type T = Test;

export const entry = (index: number, term = 1, data = `e${index}`): LogEntry => ({
	index,
	term,
	type: "command",
	data: Buffer.from(data),
});

const range = (lo: number, hi: number, term = 1) => Array.from({ length: hi - lo + 1 }, (_, i) => entry(lo + i, term));
const ids = (es: LogEntry[]) => es.map((e) => `${e.index}/${e.term}/${Buffer.from(e.data).toString()}`);

export function logStoreCompliance(t: T, name: string, make: () => Promise<LogStore>): void {
	t.test(`${name}: LogStore contract`, async (t) => {
		const s = await make();
		t.equal(await s.firstIndex(), 0, "empty: first 0");
		t.equal(await s.lastIndex(), 0, "empty: last 0");
		t.equal(await s.getLog(1), undefined);
		await s.storeLogs(range(1, 10));
		t.equal(await s.firstIndex(), 1);
		t.equal(await s.lastIndex(), 10);
		t.same(ids([(await s.getLog(5))!]), ["5/1/e5"]);
		t.same(ids(await s.getLogs(3, 5)), ["3/1/e3", "4/1/e4", "5/1/e5"]);
		t.same(ids(await s.getLogs(9, 20)), ["9/1/e9", "10/1/e10"], "getLogs clips to what exists");
		// Overwrite from 8 on (a follower resolving a conflict): 9 and 10 of term 1 disappear.
		await s.storeLogs([entry(8, 2, "x8")]);
		t.equal(await s.lastIndex(), 8);
		t.same(ids(await s.getLogs(7, 10)), ["7/1/e7", "8/2/x8"]);
		await t.rejects(s.storeLogs([entry(12, 2)]), { code: "ERR_LOG_GAP" }, "a gap is refused");
		await t.rejects(s.storeLogs([entry(9, 2), entry(11, 2)]), { code: "ERR_LOG_GAP" }, "a gap inside a batch too");
		t.equal(await s.lastIndex(), 8, "nothing of a refused batch was stored");
		// Compaction of a prefix, then a suffix removal.
		await s.deleteRange(1, 4);
		t.equal(await s.firstIndex(), 5);
		t.equal(await s.getLog(4), undefined);
		await s.deleteRange(7, 8);
		t.equal(await s.lastIndex(), 6);
		await s.storeLogs(range(7, 9, 3));
		t.same(ids(await s.getLogs(5, 9)), ["5/1/e5", "6/1/e6", "7/3/e7", "8/3/e8", "9/3/e9"]);
		const big = Buffer.alloc(300_000, 7);
		await s.storeLogs([{ index: 10, term: 3, type: "command", data: big }]);
		t.equal((await s.getLog(10))!.data.length, big.length, "a large entry round-trips");
		await s.close();
	});
}

export function stableStoreCompliance(t: T, name: string, make: () => Promise<StableStore>): void {
	t.test(`${name}: StableStore contract`, async (t) => {
		const s = await make();
		t.equal(await s.get("missing"), undefined);
		t.equal(await s.getUint64("term"), 0, "a missing number reads 0");
		await s.setUint64("term", 2 ** 40 + 3);
		t.equal(await s.getUint64("term"), 2 ** 40 + 3);
		await s.set("vote", Buffer.from("node-b"));
		t.equal(Buffer.from((await s.get("vote"))!).toString(), "node-b");
		await s.set("vote", Buffer.from("node-c"));
		t.equal(Buffer.from((await s.get("vote"))!).toString(), "node-c", "set overwrites");
		await s.close();
	});
}

export function snapshotStoreCompliance(
	t: T,
	name: string,
	make: () => Promise<SnapshotStore>,
	corrupt: (s: SnapshotStore, id: string) => void,
	corruptCode = "ERR_SNAPSHOT_CHECKSUM",
): void {
	t.test(`${name}: SnapshotStore contract`, async (t) => {
		const s = await make();
		t.same(await s.list(), []);
		const configuration = { servers: [{ id: "a", address: "a", suffrage: "voter" as const }] };
		const ids: string[] = [];
		for (let i = 1; i <= 3; i++) {
			const sink = await s.create({ index: i * 10, term: 1, configuration, configurationIndex: 1 });
			await sink.write(Buffer.from(`part1-${i}`));
			await sink.write(Buffer.from("|part2"));
			await sink.close();
			ids.push(sink.id);
		}
		const list = await s.list();
		t.equal(list.length, 2, "only the newest two are retained");
		t.equal(list[0]!.index, 30, "newest first");
		const got = await s.open(list[0]!.id);
		t.equal(Buffer.from(got.data).toString(), "part1-3|part2");
		t.equal(got.meta.size, 13);
		t.same(got.meta.configuration, configuration);
		const cancelled = await s.create({ index: 40, term: 1, configuration, configurationIndex: 1 });
		await cancelled.write(Buffer.from("never"));
		await cancelled.cancel();
		t.equal((await s.list())[0]!.index, 30, "a cancelled snapshot leaves nothing");
		await t.rejects(s.open("nope"), { code: "ERR_SNAPSHOT_NOT_FOUND" });
		corrupt(s, list[0]!.id);
		await t.rejects(s.open(list[0]!.id), { code: corruptCode }, "a damaged snapshot is refused");
	});
}
