// The Raft log as the core sees it: entries after the last snapshot, and how far they are
// persisted (stable), committed and applied. Pure bookkeeping; the shell does the disk I/O.
import { RaftError } from "../errors.ts";
import type { LogEntry } from "../storage/types.ts";

export class RaftLog {
	/** Index and term of the last entry folded into a snapshot (0/0: none). */
	snapshotIndex = 0;
	snapshotTerm = 0;
	/** entries[k].index === snapshotIndex + 1 + k */
	private entries: LogEntry[] = [];
	/** Last index known persisted by the shell. */
	stableIndex = 0;
	committed = 0;
	applied = 0;

	firstIndex(): number {
		return this.snapshotIndex + 1;
	}

	lastIndex(): number {
		return this.snapshotIndex + this.entries.length;
	}

	lastTerm(): number {
		return this.term(this.lastIndex()) ?? 0;
	}

	/** Term of entry i; undefined when i is compacted away or beyond the end. */
	term(i: number): number | undefined {
		if (i === this.snapshotIndex) return this.snapshotTerm;
		if (i < this.snapshotIndex || i > this.lastIndex()) return undefined;
		return this.entries[i - this.snapshotIndex - 1]!.term;
	}

	entry(i: number): LogEntry | undefined {
		if (i <= this.snapshotIndex || i > this.lastIndex()) return undefined;
		return this.entries[i - this.snapshotIndex - 1];
	}

	/** Entries lo..hi inclusive, bounded by count and bytes (at least one entry when any). */
	slice(
		lo: number,
		hi: number,
		maxEntries = Number.POSITIVE_INFINITY,
		maxBytes = Number.POSITIVE_INFINITY,
	): LogEntry[] {
		if (lo <= this.snapshotIndex) throw new RaftError(`slice from compacted index ${lo}`, "ERR_COMPACTED");
		const out: LogEntry[] = [];
		let bytes = 0;
		for (let i = lo; i <= Math.min(hi, this.lastIndex()) && out.length < maxEntries; i++) {
			const e = this.entries[i - this.snapshotIndex - 1]!;
			bytes += e.data.length + 24;
			if (out.length > 0 && bytes > maxBytes) break;
			out.push(e);
		}
		return out;
	}

	isUpToDate(lastIndex: number, lastTerm: number): boolean {
		const myTerm = this.lastTerm();
		return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
	}

	/** Leader side: append freshly proposed entries. */
	appendNew(entries: LogEntry[]): void {
		for (const e of entries) {
			if (e.index !== this.lastIndex() + 1) throw new RaftError(`append at ${e.index} after ${this.lastIndex()}`);
			this.entries.push(e);
		}
	}

	/**
	 * Follower side: entries follow prevIndex (already matched). Existing entries that agree are
	 * kept; the first conflicting one and everything after it are replaced. Returns the last index
	 * of the append and the first index actually written (0 when every entry was already there),
	 * so the caller knows exactly which part of its log changed.
	 */
	appendFromLeader(entries: readonly LogEntry[]): { last: number; from: number } {
		let k = 0;
		for (; k < entries.length; k++) {
			const e = entries[k]!;
			if (e.index <= this.snapshotIndex) continue; // already folded into our snapshot
			const t = this.term(e.index);
			if (t === undefined || t !== e.term) break;
		}
		if (k === entries.length) {
			return { last: entries.length > 0 ? entries[entries.length - 1]!.index : this.lastIndex(), from: 0 };
		}
		const first = entries[k]!.index;
		if (first <= this.committed) {
			throw new RaftError(`refusing to overwrite committed entry ${first} (commit ${this.committed})`, "ERR_INVARIANT");
		}
		this.entries.length = first - this.snapshotIndex - 1;
		this.stableIndex = Math.min(this.stableIndex, first - 1);
		for (let j = k; j < entries.length; j++) this.entries.push(entries[j]!);
		return { last: entries[entries.length - 1]!.index, from: first };
	}

	/** The largest index <= index whose term is <= term: where a rejected leader should probe next. */
	findConflictByTerm(index: number, term: number): number {
		let i = Math.min(index, this.lastIndex());
		while (i > this.snapshotIndex) {
			const t = this.term(i)!;
			if (t <= term) break;
			i--;
		}
		return i;
	}

	unstable(): LogEntry[] {
		return this.entries.slice(this.stableIndex - this.snapshotIndex);
	}

	stableTo(index: number, term: number): void {
		if (this.term(index) === term && index > this.stableIndex) this.stableIndex = index;
	}

	commitTo(index: number): boolean {
		const to = Math.min(index, this.lastIndex());
		if (to <= this.committed) return false;
		this.committed = to;
		return true;
	}

	/** Replace everything with a snapshot's point (follower installing a snapshot). */
	restore(index: number, term: number): void {
		this.entries = [];
		this.snapshotIndex = index;
		this.snapshotTerm = term;
		this.stableIndex = index;
		this.committed = index;
		this.applied = index;
	}

	/** Drop entries up to and including index (they are in a snapshot now). */
	compact(index: number): void {
		if (index <= this.snapshotIndex) return;
		if (index > this.applied) throw new RaftError(`compact to ${index} beyond applied ${this.applied}`, "ERR_COMPACT");
		const term = this.term(index)!;
		this.entries = this.entries.slice(index - this.snapshotIndex);
		this.snapshotIndex = index;
		this.snapshotTerm = term;
	}

	/** Load persisted state at start (entries must be contiguous after the snapshot point). */
	load(snapshotIndex: number, snapshotTerm: number, entries: LogEntry[], committed: number): void {
		this.snapshotIndex = snapshotIndex;
		this.snapshotTerm = snapshotTerm;
		this.entries = entries.filter((e) => e.index > snapshotIndex);
		for (const [k, e] of this.entries.entries()) {
			if (e.index !== snapshotIndex + 1 + k) throw new RaftError(`log gap at ${e.index}`, "ERR_LOG_GAP");
		}
		this.stableIndex = this.lastIndex();
		this.committed = Math.min(Math.max(committed, snapshotIndex), this.lastIndex());
		this.applied = snapshotIndex;
	}
}
