// A file snapshot store: each snapshot is a directory holding meta.json (with a sha256 of the
// data) and state.bin, written under a temporary name, fsynced and renamed into place, so a crash
// never leaves a half snapshot visible. The newest `retain` are kept.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { SnapshotChecksumError, SnapshotNotFoundError } from "./errors.ts";
import { ensureDir, writeFileAtomic } from "./fsync.ts";
import { nodeIO, type StorageIO } from "./io.ts";
import type { SnapshotMeta, SnapshotSink, SnapshotStore } from "./types.ts";

interface StoredMeta extends SnapshotMeta {
	sha256: string;
}

export class FileSnapshotStore implements SnapshotStore {
	private readonly dir: string;
	private readonly retain: number;
	private readonly io: StorageIO;

	constructor(dir: string, retain = 2, o: { io?: StorageIO } = {}) {
		this.dir = dir;
		this.retain = Math.max(1, retain);
		this.io = o.io ?? nodeIO;
		ensureDir(dir, this.io);
		// Leftovers of snapshots that were being written when we crashed.
		for (const n of this.io.readdir(dir)) if (n.endsWith(".tmp")) this.io.removeTree(join(dir, n));
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
		return {
			id,
			write: async (chunk) => {
				let off = 0;
				while (off < chunk.length) off += io.write(fd, chunk, off, chunk.length - off);
				hash.update(chunk);
				size += chunk.length;
			},
			close: async () => {
				if (finished) return;
				finished = true;
				io.fsync(fd);
				io.close(fd);
				const stored: StoredMeta = { ...meta, id, size, sha256: hash.digest("hex") };
				writeFileAtomic(join(tmp, "meta.json"), Buffer.from(JSON.stringify(stored)), io);
				io.rename(tmp, join(this.dir, id));
				io.fsyncDir(this.dir);
				this.reap();
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
			.filter((n) => !n.endsWith(".tmp") && this.io.exists(join(this.dir, n, "meta.json")))
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
			const { sha256: _, ...meta } = this.readMeta(id);
			return meta;
		});
	}

	async open(id: string): Promise<{ meta: SnapshotMeta; data: Uint8Array }> {
		if (!/^[\w-]+$/.test(id) || !this.io.exists(join(this.dir, id, "meta.json"))) throw new SnapshotNotFoundError(id);
		const { sha256, ...meta } = this.readMeta(id);
		const data = this.io.readFile(join(this.dir, id, "state.bin"));
		if (data.length !== meta.size || createHash("sha256").update(data).digest("hex") !== sha256) {
			throw new SnapshotChecksumError(id);
		}
		return { meta, data: new Uint8Array(data) };
	}
}
