// The narrow storage interfaces of raft-ts, shaped like hashicorp/raft's LogStore, StableStore and
// SnapshotStore. Every method is async; a resolved write is durable (fsynced) unless the store is an
// in-memory one made for tests.

export type LogType = "command" | "noop" | "configuration" | "barrier";

export interface LogEntry {
	index: number;
	term: number;
	type: LogType;
	data: Uint8Array;
}

export interface LogStore {
	/** Index of the first entry, 0 when empty. */
	firstIndex(): Promise<number>;
	/** Index of the last entry, 0 when empty. */
	lastIndex(): Promise<number>;
	getLog(index: number): Promise<LogEntry | undefined>;
	/** Entries lo..hi inclusive that exist, in order. */
	getLogs(lo: number, hi: number): Promise<LogEntry[]>;
	/** Appends (or overwrites from the first index on) a batch; one fsync per call. */
	storeLogs(entries: readonly LogEntry[]): Promise<void>;
	/** Removes entries min..max inclusive (a prefix for compaction, or a suffix for conflicts). */
	deleteRange(min: number, max: number): Promise<void>;
	close(): Promise<void>;
}

/**
 * Encryption at rest for the file log and snapshot store: seal with authenticated encryption (e.g.
 * AES-256-GCM) bound to `aad`; open throws when the key is wrong or the data or its `aad` changed.
 */
export interface RecordCipher {
	seal(plain: Uint8Array, aad: string): Uint8Array;
	open(sealed: Uint8Array, aad: string): Uint8Array;
}

export interface StableStore {
	set(key: string, value: Uint8Array): Promise<void>;
	get(key: string): Promise<Uint8Array | undefined>;
	setUint64(key: string, value: number): Promise<void>;
	getUint64(key: string): Promise<number>;
	close(): Promise<void>;
}

export interface ServerConfig {
	id: string;
	address: string;
	suffrage: "voter" | "nonvoter";
}

export interface Configuration {
	servers: ServerConfig[];
}

export interface SnapshotMeta {
	id: string;
	index: number;
	term: number;
	configuration: Configuration;
	configurationIndex: number;
	size: number;
}

export interface SnapshotSink {
	readonly id: string;
	write(chunk: Uint8Array): Promise<void>;
	/** Commits the snapshot (fsync + atomic rename); older ones beyond `retain` are removed. */
	close(): Promise<void>;
	/** Abandons it, leaving nothing behind. */
	cancel(): Promise<void>;
}

export interface SnapshotStore {
	create(meta: Omit<SnapshotMeta, "id" | "size">): Promise<SnapshotSink>;
	/** Newest first. */
	list(): Promise<SnapshotMeta[]>;
	/** Verifies the checksum while reading; a mismatch throws. */
	open(id: string): Promise<{ meta: SnapshotMeta; data: Uint8Array }>;
}
