// InstallSnapshot in chunks (like etcd/hashicorp): a snapshot of any size crosses transports whose
// frames are bounded. Every chunk carries its offset, the last one `done`, and all of them the
// sha256 of the whole snapshot, which the receiver checks before the core ever sees the data.
import { createHash } from "node:crypto";
import type { SnapshotRequest } from "./core/index.ts";
import { InvalidMessageError } from "./errors.ts";
import { SnapshotChecksumError } from "./storage/errors.ts";
import type { SnapshotMeta } from "./storage/types.ts";

export interface SnapshotChunk extends SnapshotRequest {
	data: Uint8Array;
	offset: number;
	done: boolean;
	checksum: string;
}

export const snapshotChecksum = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** Splits a snapshot message into chunks of at most `chunkBytes` of data. */
export function snapshotChunks(m: SnapshotRequest, data: Uint8Array, chunkBytes: number, checksum: string) {
	const out: SnapshotChunk[] = [];
	let offset = 0;
	do {
		const end = Math.min(offset + chunkBytes, data.length);
		out.push({ ...m, data: data.subarray(offset, end), offset, done: end === data.length, checksum });
		offset = end;
	} while (offset < data.length);
	return out;
}

interface PartialSnapshot {
	key: string;
	checksum: string;
	chunks: Uint8Array[];
	size: number;
}

const keyOf = (meta: SnapshotMeta) => `${meta.term}/${meta.index}/${meta.id}`;

/** Reassembles chunks per sender; returns the whole snapshot message once complete and verified. */
export class SnapshotAssembler {
	private readonly partial = new Map<string, PartialSnapshot>();
	private readonly maxBytes: number;

	constructor(maxBytes: number) {
		this.maxBytes = maxBytes;
	}

	/**
	 * Feed one chunk. Returns the assembled message when `done`, undefined while more is due (or
	 * when an out-of-order chunk made it start over: the leader resends the snapshot). Throws
	 * SnapshotChecksumError for a snapshot that does not match its checksum, InvalidMessageError
	 * for a chunk without the chunk fields or beyond the size bound.
	 */
	push(from: string, m: SnapshotRequest & Partial<SnapshotChunk>): SnapshotRequest | undefined {
		if (!m.data || typeof m.offset !== "number" || typeof m.done !== "boolean" || typeof m.checksum !== "string") {
			throw new InvalidMessageError("snapshot: data must come in chunks with offset, done and checksum");
		}
		const key = keyOf(m.meta);
		let p = this.partial.get(from);
		if (m.offset === 0) {
			p = { key, checksum: m.checksum, chunks: [], size: 0 };
			this.partial.set(from, p);
		}
		if (!p || p.key !== key || p.checksum !== m.checksum || p.size !== m.offset) {
			this.partial.delete(from); // a gap (lost chunk) or a different snapshot: wait for a resend
			return undefined;
		}
		p.size += m.data.length;
		if (p.size > this.maxBytes) {
			this.partial.delete(from);
			throw new InvalidMessageError(`snapshot larger than the ${this.maxBytes}-byte bound`);
		}
		p.chunks.push(new Uint8Array(m.data));
		if (!m.done) return undefined;
		this.partial.delete(from);
		const data = p.chunks.length === 1 ? p.chunks[0]! : Buffer.concat(p.chunks);
		if (snapshotChecksum(data) !== p.checksum) throw new SnapshotChecksumError(m.meta.id);
		return { type: "snapshot", term: m.term, from: m.from, to: m.to, meta: m.meta, data };
	}
}
