import { appendFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import {
	CorruptLogError,
	CorruptStableError,
	FileLogStore,
	FileSnapshotStore,
	FileStableStore,
	MemLogStore,
	MemSnapshotStore,
	MemStableStore,
	type SnapshotStore,
} from "../../../consensus/index.ts";
import { tempDir } from "../../helpers/index.ts";
import { entry, logStoreCompliance, snapshotStoreCompliance, stableStoreCompliance } from "./compliance.ts";

const dirs: Array<() => void> = [];
t.teardown(() => {
	for (const d of dirs) d();
});
const fresh = () => {
	const d = tempDir("raft-store-");
	dirs.push(d.remove);
	return d.path;
};

logStoreCompliance(t, "MemLogStore", async () => new MemLogStore());
logStoreCompliance(t, "FileLogStore", async () => FileLogStore.open({ dir: fresh() }));
logStoreCompliance(t, "FileLogStore (tiny segments)", async () =>
	FileLogStore.open({ dir: fresh(), segmentBytes: 64 }),
);
stableStoreCompliance(t, "MemStableStore", async () => new MemStableStore());
stableStoreCompliance(t, "FileStableStore", async () => FileStableStore.open(fresh()));
snapshotStoreCompliance(
	t,
	"MemSnapshotStore",
	async () => new MemSnapshotStore(2),
	(s, id) => (s as MemSnapshotStore).corrupt(id),
);
const snapDirs = new WeakMap<SnapshotStore, string>();
snapshotStoreCompliance(
	t,
	"FileSnapshotStore",
	async () => {
		const dir = fresh();
		const s = new FileSnapshotStore(dir, 2);
		snapDirs.set(s, dir);
		return s;
	},
	(s, id) => {
		const p = join(snapDirs.get(s)!, id, "state.bin");
		const b = readFileSync(p);
		b[0]! ^= 0xff;
		writeFileSync(p, b);
	},
);

t.test("FileLogStore: everything survives a reopen, across segments", async (t) => {
	const dir = fresh();
	const a = await FileLogStore.open({ dir, segmentBytes: 200 });
	for (let i = 1; i <= 50; i += 5) await a.storeLogs([1, 2, 3, 4, 5].map((k) => entry(i + k - 1, 2)));
	await a.storeLogs([entry(48, 3, "new48")]);
	await a.deleteRange(1, 20);
	await a.close();
	t.ok(readdirSync(dir).filter((n) => n.endsWith(".seg")).length > 2, "several segments");
	const b = await FileLogStore.open({ dir, segmentBytes: 200 });
	t.equal(await b.firstIndex(), 21);
	t.equal(await b.lastIndex(), 48);
	t.equal(Buffer.from((await b.getLog(48))!.data).toString(), "new48");
	t.equal((await b.getLog(47))!.term, 2);
	t.equal(b.recovery.tornBytes, 0);
	await b.close();
});

t.test("FileLogStore: a torn tail is cut off at open; the rest survives", async (t) => {
	const dir = fresh();
	const a = await FileLogStore.open({ dir });
	await a.storeLogs([entry(1), entry(2), entry(3)]);
	await a.close();
	const seg = join(dir, readdirSync(dir).find((n) => n.endsWith(".seg"))!);
	// Half a record: a header promising 40 bytes, and only 5 of them.
	const torn = Buffer.alloc(13);
	torn.writeUInt32LE(40, 0);
	appendFileSync(seg, torn);
	const b = await FileLogStore.open({ dir });
	t.equal(await b.lastIndex(), 3, "the acknowledged entries are all there");
	t.equal(b.recovery.tornBytes, 13, "the torn bytes were cut");
	await b.storeLogs([entry(4)]);
	await b.close();
	const c = await FileLogStore.open({ dir });
	t.equal(await c.lastIndex(), 4, "and the log goes on cleanly after the cut");
	await c.close();
});

t.test("FileLogStore: corruption in the middle is refused, not silently dropped", async (t) => {
	const dir = fresh();
	const a = await FileLogStore.open({ dir });
	await a.storeLogs([entry(1), entry(2), entry(3), entry(4)]);
	await a.close();
	const seg = join(dir, readdirSync(dir).find((n) => n.endsWith(".seg"))!);
	const b = readFileSync(seg);
	b[20]! ^= 0x55; // inside the first record's payload
	writeFileSync(seg, b);
	const err = await FileLogStore.open({ dir }).then(
		() => undefined,
		(e: unknown) => e,
	);
	t.ok(err instanceof CorruptLogError, "CorruptLogError");
	t.match((err as Error).message, /checksum mismatch/);
	t.equal(readFileSync(seg).length, b.length, "nothing was truncated");
});

t.test("FileLogStore: a flipped bit in a record's length is corruption, not a torn tail", async (t) => {
	const dir = fresh();
	const a = await FileLogStore.open({ dir });
	await a.storeLogs([entry(1)]);
	const seg = join(dir, readdirSync(dir).find((n) => n.endsWith(".seg"))!);
	const second = readFileSync(seg).length; // record 2 starts where record 1 ends
	await a.storeLogs([entry(2), entry(3), entry(4)]);
	await a.close();
	const b = readFileSync(seg);
	b[second + 3]! ^= 0x40; // the length's top byte: now it points far past the end of the file
	writeFileSync(seg, b);
	const err = await FileLogStore.open({ dir }).then(
		() => undefined,
		(e: unknown) => e,
	);
	t.ok(err instanceof CorruptLogError, "CorruptLogError, entries 2-4 were fsynced and must not be cut");
	t.equal((err as CorruptLogError).code, "ERR_CORRUPT_LOG");
	t.equal((err as CorruptLogError).offset, second, "it names the bad record");
	t.equal(readFileSync(seg).length, b.length, "nothing was truncated");
});

t.test("FileLogStore: a final record cut short by a crash is a torn tail", async (t) => {
	const dir = fresh();
	const a = await FileLogStore.open({ dir });
	await a.storeLogs([entry(1), entry(2), entry(3)]);
	const seg = join(dir, readdirSync(dir).find((n) => n.endsWith(".seg"))!);
	const before = readFileSync(seg).length;
	await a.storeLogs([entry(4, 1, "x".repeat(100))]);
	await a.close();
	const full = readFileSync(seg);
	writeFileSync(seg, full.subarray(0, before + 40)); // header intact, payload cut
	const b = await FileLogStore.open({ dir });
	t.equal(await b.lastIndex(), 3);
	t.equal(b.recovery.tornBytes, 40);
	await b.close();
	// Zeros after the last record (space a crash left unfilled) are torn too.
	appendFileSync(seg, Buffer.alloc(64));
	const c = await FileLogStore.open({ dir });
	t.equal(await c.lastIndex(), 3);
	t.equal(c.recovery.tornBytes, 64);
	await c.close();
});

t.test("FileLogStore: a segment of another format is refused, not read as a torn tail", async (t) => {
	const dir = fresh();
	// A record in the older format (8-byte header, no magic): it must not be "repaired" away.
	const payload = Buffer.from("not a record of this format");
	const header = Buffer.alloc(8);
	header.writeUInt32LE(payload.length, 0);
	writeFileSync(join(dir, `${"1".padStart(20, "0")}.seg`), Buffer.concat([header, payload]));
	const err = await FileLogStore.open({ dir }).then(
		() => undefined,
		(e: unknown) => e,
	);
	t.ok(err instanceof CorruptLogError);
	t.match((err as Error).message, /not a raft-ts log segment/);
	t.equal(readdirSync(dir).length, 1, "the file is still there");
	// A last segment that a crash left empty right after creating it is a torn creation.
	const dir2 = fresh();
	const a = await FileLogStore.open({ dir: dir2 });
	await a.storeLogs([entry(1), entry(2)]);
	await a.close();
	writeFileSync(join(dir2, `${"3".padStart(20, "0")}.seg`), Buffer.alloc(0));
	const b = await FileLogStore.open({ dir: dir2 });
	t.equal(await b.lastIndex(), 2);
	await b.storeLogs([entry(3)]);
	await b.close();
	const c = await FileLogStore.open({ dir: dir2 });
	t.equal(await c.lastIndex(), 3);
	await c.close();
});

t.test("FileLogStore: a torn record at the end of a non-last segment is corruption, nothing is cut", async (t) => {
	// A segment is closed only after its last batch was fdatasynced, so its end cannot be torn: a bad
	// final record there is damage to acknowledged data and must be refused, not truncated away.
	const dir = fresh();
	const a = await FileLogStore.open({ dir, segmentBytes: 64 });
	for (let i = 1; i <= 6; i++) await a.storeLogs([entry(i)]);
	await a.close();
	const segs = readdirSync(dir)
		.filter((n) => n.endsWith(".seg"))
		.sort();
	t.ok(segs.length >= 2, `${segs.length} segments`);
	const first = join(dir, segs[0]!);
	const whole = readFileSync(first);
	writeFileSync(first, whole.subarray(0, whole.length - 3)); // its last record loses 3 bytes
	const err = await FileLogStore.open({ dir, segmentBytes: 64 }).then(
		() => undefined,
		(e: unknown) => e,
	);
	t.ok(err instanceof CorruptLogError, "CorruptLogError");
	t.equal((err as CorruptLogError).file, first, "it names the segment");
	t.equal(readFileSync(first).length, whole.length - 3, "nothing was truncated");
	t.equal(readdirSync(dir).filter((n) => n.endsWith(".seg")).length, segs.length, "no segment was removed");
	// Positive control: the same cut in the last segment is a torn tail and is cut off.
	writeFileSync(first, whole);
	const last = join(dir, segs.at(-1)!);
	const tail = readFileSync(last);
	writeFileSync(last, tail.subarray(0, tail.length - 3));
	const b = await FileLogStore.open({ dir, segmentBytes: 64 });
	t.equal(await b.lastIndex(), 5, "the torn last entry is gone, the rest is there");
	await b.close();
});

t.test("FileLogStore: after deleting the whole log it may restart below the old last index", async (t) => {
	// A follower installing a snapshot deletes its whole log; the next entry follows the snapshot,
	// which may be below the index the log had reached.
	const dir = fresh();
	const a = await FileLogStore.open({ dir });
	await a.storeLogs([entry(1), entry(2), entry(3), entry(4), entry(5)]);
	await a.deleteRange(1, 5);
	await a.storeLogs([entry(3, 2, "after-snapshot")]);
	await a.close();
	const b = await FileLogStore.open({ dir });
	t.equal(await b.firstIndex(), 3);
	t.equal(await b.lastIndex(), 3);
	t.equal(Buffer.from((await b.getLog(3))!.data).toString(), "after-snapshot");
	await b.close();
});

t.test("FileStableStore: a corrupt file is refused with ERR_CORRUPT_STABLE", async (t) => {
	const dir = fresh();
	const a = await FileStableStore.open(dir);
	await a.setUint64("CurrentTerm", 5);
	await a.close();
	const path = join(dir, "stable.bin");
	const good = readFileSync(path);
	const bad = Buffer.from(good);
	bad[bad.length - 1]! ^= 0x01;
	for (const [what, bytes, why] of [
		["a flipped bit", bad, /checksum mismatch/],
		["a file shorter than its checksum", good.subarray(0, 3), /shorter than its checksum/],
	] as const) {
		writeFileSync(path, bytes);
		const err = await FileStableStore.open(dir).then(
			() => undefined,
			(e: unknown) => e,
		);
		t.ok(err instanceof CorruptStableError, `${what}: CorruptStableError`);
		t.equal((err as CorruptStableError).code, "ERR_CORRUPT_STABLE");
		t.match((err as Error).message, why);
		t.match((err as Error).message, path, "it names the file");
	}
	writeFileSync(path, good); // positive control: the intact file opens
	const b = await FileStableStore.open(dir);
	t.equal(await b.getUint64("CurrentTerm"), 5);
	await b.close();
});
