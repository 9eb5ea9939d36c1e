// Storage errors: corruption is refused loudly (never "repaired" by dropping acknowledged data).
import { RaftError } from "../errors.ts";

export class CorruptLogError extends RaftError {
	override name = "CorruptLogError";
	readonly file: string;
	readonly offset: number;
	constructor(file: string, offset: number, why: string) {
		super(`log segment ${file} is corrupt at byte ${offset}: ${why}`, "ERR_CORRUPT_LOG");
		this.file = file;
		this.offset = offset;
	}
}

/** The stable store's file (term, vote) fails its checksum: real damage, never a torn write (it is renamed into place). */
export class CorruptStableError extends RaftError {
	override name = "CorruptStableError";
	readonly file: string;
	constructor(file: string, why: string) {
		super(`stable store ${file} is corrupt: ${why}`, "ERR_CORRUPT_STABLE");
		this.file = file;
	}
}

export class SnapshotChecksumError extends RaftError {
	override name = "SnapshotChecksumError";
	constructor(id: string) {
		super(`snapshot ${id} does not match its checksum`, "ERR_SNAPSHOT_CHECKSUM");
	}
}

/** A chunk of an encrypted snapshot does not open: a wrong data key, or tampered, moved or cut off. */
export class SnapshotSealError extends RaftError {
	override name = "SnapshotSealError";
	constructor(id: string, chunk: number, why: string) {
		super(`snapshot ${id}: chunk ${chunk} ${why}`, "ERR_SNAPSHOT_SEALED");
	}
}

export class SnapshotNotFoundError extends RaftError {
	override name = "SnapshotNotFoundError";
	constructor(id: string) {
		super(`no snapshot ${id}`, "ERR_SNAPSHOT_NOT_FOUND");
	}
}

export class LogGapError extends RaftError {
	override name = "LogGapError";
	constructor(expected: number, got: number) {
		super(`log entries must be contiguous: expected index ${expected}, got ${got}`, "ERR_LOG_GAP");
	}
}

export class StoreClosedError extends RaftError {
	override name = "StoreClosedError";
	constructor() {
		super("the store is closed", "ERR_STORE_CLOSED");
	}
}

/** A store already sealed with one cipher was given another: what it sealed would no longer open. */
export class CipherInUseError extends RaftError {
	override name = "CipherInUseError";
	constructor(store: string) {
		super(`${store} is already sealed with another cipher`, "ERR_CIPHER_IN_USE");
	}
}
