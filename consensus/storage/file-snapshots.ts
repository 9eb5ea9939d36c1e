// A file snapshot store: each snapshot is a directory holding meta.json (with a sha256 of the
// data) and state.bin, written under a temporary name, fsynced and renamed into place, so a crash
// never leaves a half snapshot visible. The newest `retain` are kept.
// With a `cipher`, state.bin is a run of sealed chunks ([u32 length][sealed chunk], CHUNK bytes of
// data each), every chunk bound to the snapshot's id, its position and whether it is the last, so a
// chunk changed, moved, dropped or cut off is detected (SnapshotSealError); meta.json says
// `encrypted` and keeps the sha256 and size of the data itself. Plain snapshots are still read.
// `seal(cipher)` gives a store opened without a cipher one: each plain snapshot is rewritten sealed
// under its own id (a sealed copy is renamed to ID.sealed, then ID out of the way and the copy into
// its place; a start after a crash finishes or undoes that), and so is one that was being written
// plain at the time, once it is closed.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { CipherInUseError, SnapshotChecksumError, SnapshotNotFoundError, SnapshotSealError } from "./errors.ts";
import { ensureDir, writeFileAtomic } from "./fsync.ts";
import { nodeIO, type StorageIO } from "./io.ts";
import type { RecordCipher, SnapshotMeta, SnapshotSink, SnapshotStore } from "./types.ts";

interface StoredMeta extends SnapshotMeta {
	sha256: string;
	encrypted?: boolean;
}

/** Data bytes per sealed chunk. */
const CHUNK = 256 << 10;
const chunkAad = (id: string, n: number, last: boolean) => `raft-snapshot:${id}:${n}:${last ? "last" : "more"}`;

/** Seals what it is given into CHUNK-sized chunks as they fill; `end()` seals the last (maybe empty) one. */
class ChunkSealer {
	private pending: Buffer[] = [];
	private pendingBytes = 0;
	private n = 0;
	private readonly cipher: RecordCipher;
	private readonly id: string;
	private readonly out: (b: Buffer) => void;
	constructor(cipher: RecordCipher, id: string, out: (b: Buffer) => void) {
		this.cipher = cipher;
		this.id = id;
		this.out = out;
	}
	push(data: Uint8Array): void {
		this.pending.push(Buffer.from(data));
		this.pendingBytes += data.length;
		if (this.pendingBytes <= CHUNK) return;
		const all = Buffer.concat(this.pending);
		let off = 0;
		// The last chunk is sealed as such at end(): keep at least one byte back until then.
		for (; all.length - off > CHUNK; off += CHUNK) this.emit(all.subarray(off, off + CHUNK), false);
		this.pending = [all.subarray(off)];
		this.pendingBytes = all.length - off;
	}
	end(): void {
		this.emit(Buffer.concat(this.pending), true);
		this.pending = [];
		this.pendingBytes = 0;
	}
	private emit(chunk: Buffer, last: boolean): void {
		const sealed = this.cipher.seal(chunk, chunkAad(this.id, this.n++, last));
		const head = Buffer.alloc(4);
		head.writeUInt32LE(sealed.length, 0);
		this.out(Buffer.concat([head, sealed]));
	}
}

/** The data of an encrypted state.bin; throws SnapshotSealError naming the chunk that is wrong. */
function openChunks(cipher: RecordCipher, id: string, file: Buffer): Buffer {
	const parts: Buffer[] = [];
	let off = 0;
	for (let n = 0; ; n++) {
		if (off + 4 > file.length) throw new SnapshotSealError(id, n, "missing (the file was cut short)");
		const len = file.readUInt32LE(off);
		if (len > CHUNK + 1024 || off + 4 + len > file.length)
			throw new SnapshotSealError(id, n, `bad length ${len} (cut short or tampered with)`);
		const sealed = file.subarray(off + 4, off + 4 + len);
		off += 4 + len;
		const last = off === file.length;
		try {
			parts.push(Buffer.from(cipher.open(sealed, chunkAad(id, n, last))));
		} catch {
			throw new SnapshotSealError(
				id,
				n,
				last
					? "does not open as the last chunk: a wrong data key, tampered with, or chunks after it are missing"
					: "does not open: a wrong data key, or tampered with or moved",
			);
		}
		if (last) return Buffer.concat(parts);
	}
}

export class FileSnapshotStore implements SnapshotStore {
	private readonly dir: string;
	private readonly retain: number;
	private readonly io: StorageIO;
	private cipher: RecordCipher | undefined;

	/** `cipher`: encrypt the snapshots written from now on (encryption at rest). */
	constructor(dir: string, retain = 2, o: { io?: StorageIO; cipher?: RecordCipher } = {}) {
		this.dir = dir;
		this.retain = Math.max(1, retain);
		this.io = o.io ?? nodeIO;
		this.cipher = o.cipher;
		ensureDir(dir, this.io);
		this.finishReseals();
		// Leftovers of snapshots that were being written when we crashed.
		for (const n of this.io.readdir(dir)) if (n.endsWith(".tmp")) this.io.removeTree(join(dir, n));
	}

	/**
	 * A crash during a reseal (see resealOne) may leave ID.sealed, a whole and durable sealed copy
	 * of ID (it gets that name only once it is): finish the swap (ID, if still there, goes to
	 * ID.old.tmp, which is then removed with the other leftovers).
	 */
	private finishReseals(): void {
		const copies = this.io.readdir(this.dir).filter((n) => n.endsWith(".sealed"));
		for (const n of copies) {
			const id = join(this.dir, n.slice(0, -".sealed".length));
			if (this.io.exists(id)) {
				if (this.io.exists(`${id}.old.tmp`)) this.io.removeTree(`${id}.old.tmp`);
				this.io.rename(id, `${id}.old.tmp`);
			}
			this.io.rename(join(this.dir, n), id);
		}
		if (copies.length > 0) this.io.fsyncDir(this.dir);
	}

	/** Whether snapshots written from now on are sealed. */
	get sealed(): boolean {
		return this.cipher !== undefined;
	}

	/**
	 * Encryption at rest from now on, for a store opened without a cipher: snapshots written after
	 * this are sealed, and every plain one is rewritten sealed under its own id before it returns
	 * (one still being written plain is, once it is closed; one failing its checksum is left). The
	 * same cipher again only reseals what is still plain (left by a crash, or written before the
	 * store had a cipher); another one is refused (what the first sealed would no longer open).
	 */
	seal(cipher: RecordCipher): void {
		if (this.cipher && this.cipher !== cipher) throw new CipherInUseError(`the snapshot store ${this.dir}`);
		this.cipher = cipher;
		this.resealPlain();
	}

	private resealPlain(): void {
		if (!this.cipher) return;
		for (const id of this.ids()) {
			if (this.readMeta(id).encrypted) continue;
			try {
				this.resealOne(id);
			} catch (err) {
				// One that does not pass its checksum is left as it is: Raft skips it at start, and
				// retention removes it; every other error is the caller's.
				if (!(err instanceof SnapshotChecksumError)) throw err;
			}
		}
	}

	/**
	 * Rewrite plain snapshot `id` sealed, keeping its id (Raft may name it to send it). A whole,
	 * durable sealed copy exists before the plain one is touched: tmp dir, then ID.sealed (not a
	 * .tmp name: a start keeps it), then ID renamed to ID.old.tmp, ID.sealed to ID, ID.old.tmp removed.
	 */
	private resealOne(id: string): void {
		const io = this.io;
		const cipher = this.cipher!;
		const { meta, data } = this.readChecked(id);
		const stored = this.readMeta(id);
		const tmp = join(this.dir, `${id}.seal.tmp`);
		if (io.exists(tmp)) io.removeTree(tmp);
		io.mkdir(tmp);
		const fd = io.open(join(tmp, "state.bin"), "w");
		try {
			const sealer = new ChunkSealer(cipher, id, (b) => {
				let off = 0;
				while (off < b.length) off += io.write(fd, b, off, b.length - off);
			});
			sealer.push(data);
			sealer.end();
			io.fsync(fd);
		} finally {
			io.close(fd);
		}
		const sealedMeta: StoredMeta = { ...meta, sha256: stored.sha256, encrypted: true };
		writeFileAtomic(join(tmp, "meta.json"), Buffer.from(JSON.stringify(sealedMeta)), io);
		const copy = join(this.dir, `${id}.sealed`);
		io.rename(tmp, copy);
		io.fsyncDir(this.dir);
		const old = join(this.dir, `${id}.old.tmp`);
		io.rename(join(this.dir, id), old);
		io.rename(copy, join(this.dir, id));
		io.fsyncDir(this.dir);
		io.removeTree(old);
	}

	async create(meta: Omit<SnapshotMeta, "id" | "size">): Promise<SnapshotSink> {
		const id = `${String(meta.term).padStart(10, "0")}-${String(meta.index).padStart(20, "0")}-${Date.now()}`;
		const tmp = join(this.dir, `${id}.tmp`);
		const io = this.io;
		io.mkdir(tmp);
		const fd = io.open(join(tmp, "state.bin"), "w");
		const hash = createHash("sha256");
		let size = 0;
		let finished = false;
		const put = (b: Uint8Array) => {
			let off = 0;
			while (off < b.length) off += io.write(fd, b, off, b.length - off);
		};
		const sealer = this.cipher ? new ChunkSealer(this.cipher, id, put) : undefined;
		return {
			id,
			write: async (chunk) => {
				if (sealer) sealer.push(chunk);
				else put(chunk);
				hash.update(chunk);
				size += chunk.length;
			},
			close: async () => {
				if (finished) return;
				finished = true;
				sealer?.end();
				io.fsync(fd);
				io.close(fd);
				const stored: StoredMeta = {
					...meta,
					id,
					size,
					sha256: hash.digest("hex"),
					...(sealer ? { encrypted: true } : {}),
				};
				writeFileAtomic(join(tmp, "meta.json"), Buffer.from(JSON.stringify(stored)), io);
				io.rename(tmp, join(this.dir, id));
				io.fsyncDir(this.dir);
				this.reap();
				// Sealed while this one was being written plain.
				if (!sealer && this.cipher) this.resealPlain();
			},
			cancel: async () => {
				if (finished) return;
				finished = true;
				io.close(fd);
				io.removeTree(tmp);
			},
		};
	}

	private ids(): string[] {
		return this.io
			.readdir(this.dir)
			.filter((n) => !n.endsWith(".tmp") && !n.endsWith(".sealed") && this.io.exists(join(this.dir, n, "meta.json")))
			.sort()
			.reverse();
	}

	private reap(): void {
		// Renamed out of the listing (durably) before its files go: a power cut during the removal
		// must not leave a listed snapshot whose meta.json survived and whose state.bin did not.
		const old = this.ids().slice(this.retain);
		if (old.length === 0) return;
		for (const id of old) this.io.rename(join(this.dir, id), join(this.dir, `${id}.old.tmp`));
		this.io.fsyncDir(this.dir);
		for (const id of old) this.io.removeTree(join(this.dir, `${id}.old.tmp`));
	}

	private readMeta(id: string): StoredMeta {
		return JSON.parse(this.io.readFile(join(this.dir, id, "meta.json")).toString("utf8")) as StoredMeta;
	}

	async list(): Promise<SnapshotMeta[]> {
		return this.ids().map((id) => {
			const { sha256: _, encrypted: __, ...meta } = this.readMeta(id);
			return meta;
		});
	}

	async open(id: string): Promise<{ meta: SnapshotMeta; data: Uint8Array }> {
		return this.readChecked(id);
	}

	private readChecked(id: string): { meta: SnapshotMeta; data: Uint8Array } {
		if (!/^[\w-]+$/.test(id) || !this.io.exists(join(this.dir, id, "meta.json"))) throw new SnapshotNotFoundError(id);
		const { sha256, encrypted, ...meta } = this.readMeta(id);
		const file = this.io.readFile(join(this.dir, id, "state.bin"));
		if (encrypted && !this.cipher)
			throw new SnapshotSealError(id, 0, "the snapshot is encrypted and no data key was given");
		const data = encrypted ? openChunks(this.cipher!, id, file) : file;
		if (data.length !== meta.size || createHash("sha256").update(data).digest("hex") !== sha256) {
			throw new SnapshotChecksumError(id);
		}
		return { meta, data: new Uint8Array(data) };
	}
}
