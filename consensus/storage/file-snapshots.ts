// A file snapshot store: each snapshot is a directory holding meta.json (with a sha256 of the
// data) and state.bin, written under a temporary name, fsynced and renamed into place, so a crash
// never leaves a half snapshot visible. The newest `retain` are kept.
import { createHash } from "node:crypto";
import {
	closeSync,
	existsSync,
	fsyncSync,
	mkdirSync,
	openSync,
	readdirSync,
	readFileSync,
	renameSync,
	rmSync,
	writeSync,
} from "node:fs";
import { join } from "node:path";
import { SnapshotChecksumError, SnapshotNotFoundError } from "./errors.ts";
import { fsyncDir, writeFileAtomic } from "./fsync.ts";
import type { SnapshotMeta, SnapshotSink, SnapshotStore } from "./types.ts";

interface StoredMeta extends SnapshotMeta {
	sha256: string;
}

export class FileSnapshotStore implements SnapshotStore {
	private readonly dir: string;
	private readonly retain: number;

	constructor(dir: string, retain = 2) {
		this.dir = dir;
		this.retain = Math.max(1, retain);
		mkdirSync(dir, { recursive: true });
		// Leftovers of snapshots that were being written when we crashed.
		for (const n of readdirSync(dir)) if (n.endsWith(".tmp")) rmSync(join(dir, n), { recursive: true, force: true });
	}

	async create(meta: Omit<SnapshotMeta, "id" | "size">): Promise<SnapshotSink> {
		const id = `${String(meta.term).padStart(10, "0")}-${String(meta.index).padStart(20, "0")}-${Date.now()}`;
		const tmp = join(this.dir, `${id}.tmp`);
		mkdirSync(tmp);
		const fd = openSync(join(tmp, "state.bin"), "w", 0o600);
		const hash = createHash("sha256");
		let size = 0;
		let finished = false;
		return {
			id,
			write: async (chunk) => {
				let off = 0;
				while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
				hash.update(chunk);
				size += chunk.length;
			},
			close: async () => {
				if (finished) return;
				finished = true;
				fsyncSync(fd);
				closeSync(fd);
				const stored: StoredMeta = { ...meta, id, size, sha256: hash.digest("hex") };
				writeFileAtomic(join(tmp, "meta.json"), Buffer.from(JSON.stringify(stored)));
				renameSync(tmp, join(this.dir, id));
				fsyncDir(this.dir);
				this.reap();
			},
			cancel: async () => {
				if (finished) return;
				finished = true;
				closeSync(fd);
				rmSync(tmp, { recursive: true, force: true });
			},
		};
	}

	private ids(): string[] {
		return readdirSync(this.dir)
			.filter((n) => !n.endsWith(".tmp") && existsSync(join(this.dir, n, "meta.json")))
			.sort()
			.reverse();
	}

	private reap(): void {
		for (const id of this.ids().slice(this.retain)) rmSync(join(this.dir, id), { recursive: true, force: true });
	}

	private readMeta(id: string): StoredMeta {
		return JSON.parse(readFileSync(join(this.dir, id, "meta.json"), "utf8")) as StoredMeta;
	}

	async list(): Promise<SnapshotMeta[]> {
		return this.ids().map((id) => {
			const { sha256: _, ...meta } = this.readMeta(id);
			return meta;
		});
	}

	async open(id: string): Promise<{ meta: SnapshotMeta; data: Uint8Array }> {
		if (!/^[\w-]+$/.test(id) || !existsSync(join(this.dir, id, "meta.json"))) throw new SnapshotNotFoundError(id);
		const { sha256, ...meta } = this.readMeta(id);
		const data = readFileSync(join(this.dir, id, "state.bin"));
		if (data.length !== meta.size || createHash("sha256").update(data).digest("hex") !== sha256) {
			throw new SnapshotChecksumError(id);
		}
		return { meta, data: new Uint8Array(data) };
	}
}
