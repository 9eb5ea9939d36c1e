// In-memory stores for tests and simulations: the same contracts, no durability.
import { LogGapError, SnapshotChecksumError, SnapshotNotFoundError } from "./errors.ts";
import type { LogEntry, LogStore, SnapshotMeta, SnapshotSink, SnapshotStore, StableStore } from "./types.ts";

export class MemLogStore implements LogStore {
	private entries: LogEntry[] = [];

	async firstIndex(): Promise<number> {
		return this.entries[0]?.index ?? 0;
	}
	async lastIndex(): Promise<number> {
		return this.entries[this.entries.length - 1]?.index ?? 0;
	}
	async getLog(index: number): Promise<LogEntry | undefined> {
		const first = this.entries[0]?.index ?? 0;
		return index >= first ? this.entries[index - first] : undefined;
	}
	async getLogs(lo: number, hi: number): Promise<LogEntry[]> {
		const first = this.entries[0]?.index ?? 0;
		if (this.entries.length === 0) return [];
		return this.entries.slice(Math.max(lo - first, 0), Math.max(hi - first + 1, 0));
	}
	async storeLogs(batch: readonly LogEntry[]): Promise<void> {
		if (batch.length === 0) return;
		const first = this.entries[0]?.index ?? batch[0]!.index;
		const last = this.entries[this.entries.length - 1]?.index ?? first - 1;
		if (batch[0]!.index > last + 1) throw new LogGapError(last + 1, batch[0]!.index);
		for (let k = 1; k < batch.length; k++) {
			if (batch[k]!.index !== batch[k - 1]!.index + 1) throw new LogGapError(batch[k - 1]!.index + 1, batch[k]!.index);
		}
		this.entries.length = Math.max(batch[0]!.index - first, 0);
		for (const e of batch) this.entries.push({ ...e, data: new Uint8Array(e.data) });
	}
	async deleteRange(min: number, max: number): Promise<void> {
		this.entries = this.entries.filter((e) => e.index < min || e.index > max);
	}
	async close(): Promise<void> {}
}

export class MemStableStore implements StableStore {
	private kv = new Map<string, Uint8Array>();
	async set(key: string, value: Uint8Array): Promise<void> {
		this.kv.set(key, new Uint8Array(value));
	}
	async get(key: string): Promise<Uint8Array | undefined> {
		return this.kv.get(key);
	}
	async setUint64(key: string, value: number): Promise<void> {
		const b = new Uint8Array(8);
		new DataView(b.buffer).setBigUint64(0, BigInt(value));
		this.kv.set(key, b);
	}
	async getUint64(key: string): Promise<number> {
		const b = this.kv.get(key);
		return b ? Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0)) : 0;
	}
	async close(): Promise<void> {}
}

export class MemSnapshotStore implements SnapshotStore {
	private snaps: Array<{ meta: SnapshotMeta; data: Uint8Array }> = [];
	private seq = 0;
	/** Test hook: flip a byte of a stored snapshot to check that open() notices. */
	corrupt(id: string): void {
		const s = this.snaps.find((x) => x.meta.id === id);
		if (s && s.data.length > 0) s.data[0]! ^= 0xff;
	}
	private readonly sums = new Map<string, string>();
	private readonly retain: number;
	constructor(retain = 2) {
		this.retain = retain;
	}

	async create(meta: Omit<SnapshotMeta, "id" | "size">): Promise<SnapshotSink> {
		const id = `${meta.term}-${meta.index}-${++this.seq}`;
		const chunks: Uint8Array[] = [];
		let done = false;
		return {
			id,
			write: async (chunk) => {
				chunks.push(new Uint8Array(chunk));
			},
			close: async () => {
				if (done) return;
				done = true;
				const data = Buffer.concat(chunks);
				this.snaps.unshift({ meta: { ...meta, id, size: data.length }, data });
				this.sums.set(id, Buffer.from(data).toString("base64"));
				this.snaps.length = Math.min(this.snaps.length, this.retain);
			},
			cancel: async () => {
				done = true;
			},
		};
	}
	async list(): Promise<SnapshotMeta[]> {
		return this.snaps.map((s) => s.meta);
	}
	async open(id: string): Promise<{ meta: SnapshotMeta; data: Uint8Array }> {
		const s = this.snaps.find((x) => x.meta.id === id);
		if (!s) throw new SnapshotNotFoundError(id);
		if (Buffer.from(s.data).toString("base64") !== this.sums.get(id)) throw new SnapshotChecksumError(id);
		return { meta: s.meta, data: new Uint8Array(s.data) };
	}
}
