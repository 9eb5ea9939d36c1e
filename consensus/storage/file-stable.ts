// A durable stable store (current term, vote, ...): the whole map rewritten atomically on each set.
// It holds a handful of small keys, so a full rewrite is simpler and as fast as anything cleverer.
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { pack, unpack } from "msgpackr";
import { CorruptStableError, StoreClosedError } from "./errors.ts";
import { ensureDir, writeFileAtomic } from "./fsync.ts";
import { nodeIO, type StorageIO } from "./io.ts";
import type { StableStore } from "./types.ts";

export class FileStableStore implements StableStore {
	private readonly path: string;
	private readonly io: StorageIO;
	private kv = new Map<string, Uint8Array>();
	private closed = false;

	private constructor(dir: string, io: StorageIO) {
		this.io = io;
		ensureDir(dir, io);
		this.path = join(dir, "stable.bin");
	}

	static async open(dir: string, o: { io?: StorageIO } = {}): Promise<FileStableStore> {
		const s = new FileStableStore(dir, o.io ?? nodeIO);
		s.load();
		return s;
	}

	private load(): void {
		let buf: Buffer;
		try {
			buf = this.io.readFile(this.path);
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
			throw err;
		}
		// Atomic rename means a torn file cannot happen; a bad checksum is real damage.
		if (buf.length < 4) throw new CorruptStableError(this.path, `${buf.length} bytes, shorter than its checksum`);
		if (crc32(buf.subarray(4)) !== buf.readUInt32LE(0)) throw new CorruptStableError(this.path, "checksum mismatch");
		let obj: Record<string, Uint8Array>;
		try {
			obj = unpack(buf.subarray(4)) as Record<string, Uint8Array>;
		} catch (err) {
			throw new CorruptStableError(this.path, `undecodable (${(err as Error).message})`);
		}
		if (typeof obj !== "object" || obj === null) throw new CorruptStableError(this.path, "not a map");
		this.kv = new Map(Object.entries(obj).map(([k, v]) => [k, new Uint8Array(v)]));
	}

	private save(): void {
		const body = pack(Object.fromEntries(this.kv));
		const buf = Buffer.alloc(4 + body.length);
		buf.writeUInt32LE(crc32(body), 0);
		body.copy(buf, 4);
		writeFileAtomic(this.path, buf, this.io);
	}

	async set(key: string, value: Uint8Array): Promise<void> {
		if (this.closed) throw new StoreClosedError();
		this.kv.set(key, new Uint8Array(value));
		this.save();
	}

	async get(key: string): Promise<Uint8Array | undefined> {
		if (this.closed) throw new StoreClosedError();
		return this.kv.get(key);
	}

	async setUint64(key: string, value: number): Promise<void> {
		const b = Buffer.alloc(8);
		b.writeBigUInt64BE(BigInt(value));
		await this.set(key, b);
	}

	async getUint64(key: string): Promise<number> {
		const b = await this.get(key);
		return b ? Number(Buffer.from(b).readBigUInt64BE(0)) : 0;
	}

	/** Several keys in one atomic write (term + vote must never be half-written). */
	async setMany(values: Record<string, Uint8Array>): Promise<void> {
		if (this.closed) throw new StoreClosedError();
		for (const [k, v] of Object.entries(values)) this.kv.set(k, new Uint8Array(v));
		this.save();
	}

	async close(): Promise<void> {
		this.closed = true;
	}
}
