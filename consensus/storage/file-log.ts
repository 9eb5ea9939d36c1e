// A durable Raft log: append-only segment files of checksummed records, one fdatasync per batch.
//
// Record: [u32 payload length][u32 crc32 of payload][u32 crc32 of the first 8 header bytes]
// [payload = msgpackr LogEntry]. The header has its own checksum so a flipped bit in a length is
// recognised as corruption instead of looking like a record that runs past the end of the file.
// Segment files start with an 8-byte magic naming the format, so a file of another format (or an
// older one) is refused instead of being read as a torn tail. They are named by their first index. A crash can only tear the tail of the last
// segment (the batch being written); recovery cuts such a tail off. Anything else — a bad record
// in an older segment, or a bad record followed by a valid one — is corruption, and opening
// refuses with CorruptLogError rather than dropping acknowledged data.
// Entries are also kept in memory: Raft reads recent entries constantly, and compaction keeps the
// log short.
// With a `cipher` (encryption at rest) an entry's data is written sealed, as `sealed` instead of
// `data` in the payload, bound to the entry's index, term and type (records cannot be swapped or
// replayed elsewhere in the log); index, term and type stay readable. Plain records are still read
// (a log written before the cipher); they leave with compaction. A sealed record that does not open
// is refused with CorruptLogError, never cut as a torn tail: its checksums were good.
// `seal(cipher)` gives a log opened without a cipher one (the data key arrived after start): every
// segment holding a plain record is rewritten sealed, one segment at a time, each replaced by an
// atomic rename (a crash leaves some segments sealed and some plain, which opens with the cipher).
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { Packr } from "msgpackr";
import { CipherInUseError, CorruptLogError, LogGapError, StoreClosedError } from "./errors.ts";
import { ensureDir, writeFileAtomic } from "./fsync.ts";
import { nodeIO, type StorageIO } from "./io.ts";
import type { LogEntry, LogStore, LogType, RecordCipher } from "./types.ts";

const HEADER = 12;
const MAGIC = Buffer.from("RAFTLOG\x02", "latin1");
const MAX_RECORD = 64 << 20;
const packr = new Packr({ useRecords: false });

interface Located {
	entry: LogEntry;
	segment: Segment;
	offset: number;
}

interface Segment {
	first: number;
	path: string;
	size: number;
	/** It holds a record whose data is in the clear (maybe one below the floor). */
	plain?: boolean;
}

export interface FileLogStoreOptions {
	dir: string;
	/** Start a new segment when the current one passes this size. */
	segmentBytes?: number;
	/** Tests only: skip fdatasync (never in production). */
	noSync?: boolean;
	/** The file system (node:fs unless a test models power cuts). */
	io?: StorageIO;
	/** Seals each entry's data on disk (encryption at rest); plain records written before it are still read. */
	cipher?: RecordCipher;
}

/** What a sealed entry's data is bound to. */
const entryAad = (index: number, term: number, type: LogType) => `raft-log:${index}:${term}:${type}`;

/** A record's payload: `data` in the clear, or `sealed` with a cipher. */
interface StoredEntry {
	index: number;
	term: number;
	type: LogType;
	data?: Uint8Array;
	sealed?: Uint8Array;
}

/** At most the magic's length: a prefix of the magic, then only zeros. */
function isTornMagic(buf: Buffer): boolean {
	if (buf.length > MAGIC.length) return false;
	let k = 0;
	while (k < buf.length && buf[k] === MAGIC[k]) k++;
	return buf.subarray(k).every((b) => b === 0);
}

const segName = (first: number) => `${String(first).padStart(20, "0")}.seg`;

export class FileLogStore implements LogStore {
	private readonly dir: string;
	private readonly segmentBytes: number;
	private readonly noSync: boolean;
	private readonly io: StorageIO;
	private cipher: RecordCipher | undefined;
	private segments: Segment[] = [];
	private entries: Located[] = [];
	/** Entries below this index were deleted by compaction but may still sit in a segment file. */
	private floor = 0;
	private fd: number | undefined;
	/** The fdatasync of the batch storeLogs is writing (seal waits for it: it replaces the files). */
	private syncing: Promise<void> | undefined;
	private closed = false;
	/** What recovery did at open: bytes cut off a torn tail. */
	readonly recovery = { tornBytes: 0, segments: 0 };

	private constructor(o: FileLogStoreOptions) {
		this.dir = o.dir;
		this.segmentBytes = o.segmentBytes ?? 64 << 20;
		this.noSync = o.noSync ?? false;
		this.io = o.io ?? nodeIO;
		this.cipher = o.cipher;
	}

	static async open(o: FileLogStoreOptions): Promise<FileLogStore> {
		const s = new FileLogStore(o);
		s.recover();
		return s;
	}

	private metaPath(): string {
		return join(this.dir, "floor");
	}

	private recover(): void {
		ensureDir(this.dir, this.io);
		try {
			this.floor = Number(this.io.readFile(this.metaPath()).toString("utf8")) || 0;
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
			this.floor = 0;
		}
		const all = this.io.readdir(this.dir);
		// A segment's sealed copy that a crash kept from replacing it (seal): the segment is still whole.
		const leftovers = all.filter((n) => /^\d{20}\.seg\.tmp$/.test(n));
		for (const n of leftovers) this.io.unlink(join(this.dir, n));
		if (leftovers.length > 0) this.io.fsyncDir(this.dir);
		const names = all.filter((n) => /^\d{20}\.seg$/.test(n)).sort();
		this.recovery.segments = names.length;
		for (const [k, name] of names.entries()) {
			const path = join(this.dir, name);
			const seg: Segment = { first: Number(name.slice(0, 20)), path, size: 0 };
			const buf = this.io.readFile(path);
			const isLastSegment = k === names.length - 1;
			if (buf.length < MAGIC.length || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
				// A crash right after creating the last segment leaves it empty or with part of the magic,
				// possibly followed by zeros (the size landed, the data did not); nothing else was written.
				if (isLastSegment && isTornMagic(buf)) {
					this.recovery.tornBytes = buf.length;
					this.io.unlink(path);
					this.io.fsyncDir(this.dir);
					continue;
				}
				throw new CorruptLogError(path, 0, "not a raft-ts log segment (format 2)");
			}
			let off = MAGIC.length;
			while (off < buf.length) {
				const bad = this.badRecord(buf, off);
				if (bad) {
					if (isLastSegment && this.isTornTail(buf, off, bad)) {
						this.recovery.tornBytes = buf.length - off;
						const fd = this.io.open(path, "r+");
						this.io.truncate(fd, off);
						this.io.fdatasync(fd);
						this.io.close(fd);
						break;
					}
					throw new CorruptLogError(path, off, bad);
				}
				const len = buf.readUInt32LE(off);
				const { entry, sealed } = this.decode(path, off, buf.subarray(off + HEADER, off + HEADER + len));
				if (!sealed) seg.plain = true;
				const at = off;
				off += HEADER + len;
				// Compacted away: a crash may have undone the unlink of its segment (they are not fsynced).
				if (entry.index < this.floor) continue;
				// Later records overwrite earlier ones with the same or higher index (conflict truncation
				// is written as a fresh record run, see storeLogs).
				while (this.entries.length > 0 && this.entries[this.entries.length - 1]!.entry.index >= entry.index)
					this.entries.pop();
				const prev = this.entries[this.entries.length - 1];
				if (prev && prev.entry.index + 1 !== entry.index) {
					throw new CorruptLogError(path, at, `index ${entry.index} follows ${prev.entry.index}`);
				}
				this.entries.push({ entry, segment: seg, offset: at });
			}
			seg.size = Math.min(off, buf.length);
			this.segments.push(seg);
		}
		// Segments holding nothing at or above the floor: left over by a compaction or by a deletion of
		// the whole log whose unlinks a crash undid. Removed durably (storeLogs may lower the floor).
		const live = new Set(this.entries.map((l) => l.segment));
		const dead = this.segments.filter((s) => !live.has(s));
		if (dead.length > 0) {
			for (const s of dead) this.io.unlink(s.path);
			this.io.fsyncDir(this.dir);
			this.segments = this.segments.filter((s) => live.has(s));
		}
	}

	/** A record's payload as an entry, its data opened when sealed. */
	private decode(path: string, off: number, payload: Buffer): { entry: LogEntry; sealed: boolean } {
		let r: StoredEntry;
		try {
			r = packr.unpack(payload) as StoredEntry;
		} catch (err) {
			throw new CorruptLogError(path, off, `undecodable record (${(err as Error).message})`);
		}
		const { index, term, type } = r;
		if (r.sealed === undefined)
			return { entry: { index, term, type, data: new Uint8Array(r.data ?? []) }, sealed: false };
		if (!this.cipher) throw new CorruptLogError(path, off, `entry ${index} is encrypted and no data key was given`);
		try {
			const data = new Uint8Array(this.cipher.open(r.sealed, entryAad(index, term, type)));
			return { entry: { index, term, type, data }, sealed: true };
		} catch {
			throw new CorruptLogError(
				path,
				off,
				`entry ${index} (term ${term}) does not open with the data key: a wrong key, or the record was tampered with or moved`,
			);
		}
	}

	private encode(e: LogEntry): Buffer {
		const { index, term, type, data } = e;
		if (!this.cipher) return packr.pack({ index, term, type, data });
		return packr.pack({ index, term, type, sealed: this.cipher.seal(data, entryAad(index, term, type)) });
	}

	/** An entry's record: the header (length, checksums) and the payload. */
	private record(e: LogEntry): [Buffer, Buffer] {
		const payload = this.encode(e);
		const header = Buffer.alloc(HEADER);
		header.writeUInt32LE(payload.length, 0);
		header.writeUInt32LE(crc32(payload), 4);
		header.writeUInt32LE(crc32(header.subarray(0, 8)), 8);
		return [header, payload];
	}

	private badRecord(buf: Buffer, off: number): string | undefined {
		if (off + HEADER > buf.length) return "truncated header";
		if (crc32(buf.subarray(off, off + 8)) !== buf.readUInt32LE(off + 8)) return "header checksum mismatch";
		const len = buf.readUInt32LE(off);
		if (len === 0 || len > MAX_RECORD) return `bad record length ${len}`;
		if (off + HEADER + len > buf.length) return "truncated record";
		const want = buf.readUInt32LE(off + 4);
		if (crc32(buf.subarray(off + HEADER, off + HEADER + len)) !== want) return "checksum mismatch";
		return undefined;
	}

	/**
	 * Whether the bad record at `off` (in the last segment) is the remains of an interrupted final
	 * write rather than damage to data that was once complete:
	 * - fewer bytes than a header are left, or only zeros follow (space the write never filled);
	 * - a valid header promises more bytes than the file holds (the write stopped short);
	 * - the record is the very last thing in the file and no valid record follows it.
	 * A valid record anywhere after the bad spot means the bad one was complete once: corruption.
	 */
	private isTornTail(buf: Buffer, off: number, bad: string): boolean {
		if (off + HEADER > buf.length) return true;
		let zeros = true;
		for (let i = off; i < buf.length && zeros; i++) if (buf[i] !== 0) zeros = false;
		if (zeros) return true;
		if (bad === "truncated record") return true; // the header is checksummed: its length is real
		// A bad header or payload: torn only if nothing valid follows (a torn batch may leave any
		// garbage behind, but never a complete record after the incomplete one).
		for (let at = off + 1; at + HEADER <= buf.length; at++) if (!this.badRecord(buf, at)) return false;
		return true;
	}

	private check(): void {
		if (this.closed) throw new StoreClosedError();
	}

	async firstIndex(): Promise<number> {
		this.check();
		return this.entries[0]?.entry.index ?? 0;
	}

	async lastIndex(): Promise<number> {
		this.check();
		return this.entries[this.entries.length - 1]?.entry.index ?? 0;
	}

	private pos(index: number): number {
		const first = this.entries[0]?.entry.index;
		return first === undefined ? -1 : index - first;
	}

	async getLog(index: number): Promise<LogEntry | undefined> {
		this.check();
		const p = this.pos(index);
		return p >= 0 ? this.entries[p]?.entry : undefined;
	}

	async getLogs(lo: number, hi: number): Promise<LogEntry[]> {
		this.check();
		if (this.entries.length === 0 || hi < lo) return [];
		const a = Math.max(this.pos(lo), 0);
		const b = Math.min(this.pos(hi), this.entries.length - 1);
		return this.entries.slice(a, b + 1).map((l) => l.entry);
	}

	async storeLogs(batch: readonly LogEntry[]): Promise<void> {
		this.check();
		if (batch.length === 0) return;
		const last = this.entries[this.entries.length - 1]?.entry.index;
		const start = batch[0]!.index;
		if (last !== undefined && start > last + 1) throw new LogGapError(last + 1, start);
		for (let k = 1; k < batch.length; k++) {
			if (batch[k]!.index !== batch[k - 1]!.index + 1) throw new LogGapError(batch[k - 1]!.index + 1, batch[k]!.index);
		}
		if (last !== undefined && start <= last) this.truncateFrom(start);
		if (this.entries.length === 0 && start < this.floor) {
			// The whole log was deleted (a snapshot installed) and it restarts below the old floor:
			// lower the floor first, durably, or recovery would drop these entries as compacted. No
			// segment file is left to resurrect (deleteRange and recovery removed them durably).
			this.floor = start;
			writeFileAtomic(this.metaPath(), Buffer.from(String(this.floor)), this.io);
		}
		const records: Buffer[] = [];
		for (const e of batch) records.push(...this.record(e));
		const seg = this.activeSegment(start);
		if (!this.cipher) seg.plain = true;
		const fd = this.fd!;
		const buf = Buffer.concat(records);
		let off = 0;
		while (off < buf.length) off += this.io.write(fd, buf, off, buf.length - off);
		// Asynchronous: the event loop keeps serving the network while the disk syncs.
		if (!this.noSync) {
			const sync = this.io.fdatasyncAsync(fd);
			this.syncing = sync;
			try {
				await sync;
			} finally {
				if (this.syncing === sync) this.syncing = undefined;
			}
		}
		let at = seg.size;
		for (let k = 0; k < batch.length; k++) {
			const e = batch[k]!;
			this.entries.push({ entry: { ...e, data: new Uint8Array(e.data) }, segment: seg, offset: at });
			at += records[2 * k]!.length + records[2 * k + 1]!.length;
		}
		seg.size = at;
	}

	private activeSegment(nextIndex: number): Segment {
		let seg = this.segments[this.segments.length - 1];
		if (!seg || seg.size >= this.segmentBytes) {
			if (this.fd !== undefined) this.io.close(this.fd);
			seg = { first: nextIndex, path: join(this.dir, segName(nextIndex)), size: 0 };
			this.fd = this.io.open(seg.path, "a");
			// The magic is synced before the file's name: once a segment exists its magic is durable, so
			// a last segment with a bad magic is either a torn creation (a prefix of it, then at most
			// zeros, nothing else) or not ours. Without this sync a power cut could keep the first
			// batch's pages and lose the magic's.
			this.io.write(this.fd, MAGIC, 0, MAGIC.length);
			if (!this.noSync) this.io.fdatasync(this.fd);
			seg.size = MAGIC.length;
			this.io.fsyncDir(this.dir);
			this.segments.push(seg);
		} else if (this.fd === undefined) {
			this.fd = this.io.open(seg.path, "a");
		}
		return seg;
	}

	/** Cut the log (memory and files) so that `index` and everything after it are gone. */
	private truncateFrom(index: number): void {
		const p = this.pos(index);
		if (p < 0 || p >= this.entries.length) return;
		const at = this.entries[p]!;
		this.entries.length = p;
		if (this.fd !== undefined) {
			this.io.close(this.fd);
			this.fd = undefined;
		}
		// Drop whole segments after the cut, newest first, each unlink made durable before the next
		// (a power cut must leave a prefix of the log, never a gap), then shorten the one holding it.
		while (this.segments.length > 0 && this.segments[this.segments.length - 1] !== at.segment) {
			this.io.unlink(this.segments.pop()!.path);
			this.io.fsyncDir(this.dir);
		}
		const fd = this.io.open(at.segment.path, "r+");
		this.io.truncate(fd, at.offset);
		if (!this.noSync) this.io.fdatasync(fd);
		this.io.close(fd);
		at.segment.size = at.offset;
		if (at.offset <= MAGIC.length) {
			this.io.unlink(at.segment.path);
			this.segments.pop();
		}
		this.io.fsyncDir(this.dir);
	}

	async deleteRange(min: number, max: number): Promise<void> {
		this.check();
		const first = this.entries[0]?.entry.index;
		const last = this.entries[this.entries.length - 1]?.entry.index;
		if (first === undefined || last === undefined || max < first || min > last) return;
		if (max >= last) {
			// A suffix (or everything).
			if (min <= first) {
				this.entries.length = 0;
				this.floor = max + 1;
				writeFileAtomic(this.metaPath(), Buffer.from(String(this.floor)), this.io);
				if (this.fd !== undefined) this.io.close(this.fd);
				this.fd = undefined;
				for (const s of this.segments) this.io.unlink(s.path);
				this.segments = [];
				this.io.fsyncDir(this.dir);
				return;
			}
			this.truncateFrom(min);
			return;
		}
		if (min > first) throw new LogGapError(first, min); // only prefixes and suffixes can go
		// A prefix: remember the new floor first (crash-safe), then drop whole segments below it.
		this.floor = max + 1;
		writeFileAtomic(this.metaPath(), Buffer.from(String(this.floor)), this.io);
		this.entries = this.entries.slice(this.pos(max + 1));
		const keepFrom = this.entries[0]!.segment;
		while (this.segments.length > 0 && this.segments[0] !== keepFrom) this.io.unlink(this.segments.shift()!.path);
	}

	/** Whether entries are sealed on disk (a cipher was given at open or by seal). */
	get sealed(): boolean {
		return this.cipher !== undefined;
	}

	/**
	 * Encryption at rest from now on, for a log opened without a cipher: entries stored after this
	 * are sealed, and the plain records already on disk are rewritten sealed before it resolves
	 * (every segment holding one is replaced by a sealed copy, atomically, one at a time). The same
	 * cipher again only reseals what is still plain (left by a crash, or written before the log had
	 * a cipher); another is refused (records sealed with the first would no longer open).
	 */
	async seal(cipher: RecordCipher): Promise<void> {
		this.check();
		if (this.cipher && this.cipher !== cipher) throw new CipherInUseError(`the log ${this.dir}`);
		this.cipher = cipher;
		// Between batches: a batch's records were written plain and its sync may still be running.
		while (this.syncing) await this.syncing.catch(() => {});
		this.check();
		// Synchronous from here on: no batch, deletion or read can run in between.
		for (const seg of this.segments.filter((s) => s.plain)) this.resealSegment(seg);
	}

	/** Replace a segment by a sealed copy of its live entries (writeFileAtomic: tmp, fsync, rename). */
	private resealSegment(seg: Segment): void {
		if (this.fd !== undefined && seg === this.segments[this.segments.length - 1]) {
			// The active segment's descriptor would go on appending to the replaced file.
			this.io.close(this.fd);
			this.fd = undefined;
		}
		const live = this.entries.filter((l) => l.segment === seg);
		const parts: Buffer[] = [MAGIC];
		let at = MAGIC.length;
		const offsets: number[] = [];
		for (const l of live) {
			const [header, payload] = this.record(l.entry);
			parts.push(header, payload);
			offsets.push(at);
			at += HEADER + payload.length;
		}
		writeFileAtomic(seg.path, Buffer.concat(parts), this.io);
		for (const [k, l] of live.entries()) l.offset = offsets[k]!;
		seg.size = at;
		seg.plain = false;
	}

	async close(): Promise<void> {
		if (this.closed) return;
		this.closed = true;
		if (this.fd !== undefined) this.io.close(this.fd);
		this.fd = undefined;
	}

	/** Bytes on disk across segments (for stats). */
	diskBytes(): number {
		return this.segments.reduce((n, s) => n + this.io.size(s.path), 0);
	}
}
