// Change events as a resumable feed: the last N changes stay in a ring, so a loop that restarts
// (a new leader, a reconnect) resumes from the version it last saw instead of re-reading tables;
// older than the ring, or after a snapshot replaced the state, it is told to list again.
import { WatchCompactedError } from "./errors.ts";
import type { ChangeEvent, Table } from "./types.ts";

export interface WatchSelector<T extends Table = Table> {
	/** Only this table's changes (absent: every table). */
	table?: T;
	filter?: (ev: ChangeEvent<T>) => boolean;
}

export interface WatchOptions {
	/** Replay the changes with an index above this first (from the ring), then follow. */
	sinceVersion?: number;
	/** Ends the iteration (it returns, it does not throw). */
	signal?: AbortSignal;
}

interface Watcher {
	push(ev: ChangeEvent): void;
	fail(err: Error): void;
}

export class ChangeFeed {
	private readonly ring: Array<ChangeEvent | undefined>;
	private head = 0;
	private size = 0;
	/** Changes at or below this index may be missing from the ring. */
	private floor: number;
	private readonly watchers = new Set<Watcher>();
	readonly capacity: number;

	constructor(capacity = 10_000, floor = 0) {
		this.capacity = capacity;
		this.ring = new Array(capacity);
		this.floor = floor;
	}

	/** The oldest version a watch can resume from. */
	get oldest(): number {
		return this.floor;
	}

	push(ev: ChangeEvent): void {
		if (this.size === this.capacity) {
			this.floor = this.ring[this.head]!.index;
			this.ring[this.head] = ev;
			this.head = (this.head + 1) % this.capacity;
		} else {
			this.ring[(this.head + this.size) % this.capacity] = ev;
			this.size++;
		}
		for (const w of this.watchers) w.push(ev);
	}

	/** The state was replaced (snapshot install) at `index`: nothing before it can be replayed. */
	reset(index: number): void {
		this.ring.fill(undefined);
		this.head = 0;
		this.size = 0;
		this.floor = index;
		const err = new WatchCompactedError(`the store was replaced by a snapshot at version ${index}`, index);
		for (const w of [...this.watchers]) w.fail(err);
	}

	private at(i: number): ChangeEvent {
		return this.ring[(this.head + i) % this.capacity]!;
	}

	/** The retained changes with an index above `since` (binary search: the ring is in index order). */
	private after(since: number): ChangeEvent[] {
		let lo = 0;
		let hi = this.size;
		while (lo < hi) {
			const mid = (lo + hi) >> 1;
			if (this.at(mid).index <= since) lo = mid + 1;
			else hi = mid;
		}
		const out: ChangeEvent[] = [];
		for (let i = lo; i < this.size; i++) out.push(this.at(i));
		return out;
	}

	/**
	 * The changes of `sel.table` that pass `sel.filter`, as an async iterator. With sinceVersion,
	 * the retained changes after it come first; a version older than the ring throws
	 * WatchCompactedError at once. A watcher more than `capacity` events behind, or one alive when
	 * a snapshot is installed, ends with WatchCompactedError.
	 */
	watch<T extends Table = Table>(
		sel: WatchSelector<T> = {},
		o: WatchOptions = {},
	): AsyncIterableIterator<ChangeEvent<T>> {
		const since = o.sinceVersion;
		if (since !== undefined && since < this.floor)
			throw new WatchCompactedError(
				`cannot watch from version ${since}: changes up to ${this.floor} are no longer kept`,
				this.floor,
			);
		// A change of sel.table is a ChangeEvent<T>: the narrowing below is what `table` checks.
		const match = (ev: ChangeEvent): boolean =>
			(sel.table === undefined || ev.table === sel.table) && (!sel.filter || sel.filter(ev as ChangeEvent<T>));
		const queue: ChangeEvent<T>[] = [];
		let failed: Error | undefined;
		let done = false;
		let wake: (() => void) | undefined;
		const from = since ?? -1;
		const feed = this;
		const close = () => {
			done = true;
			feed.watchers.delete(w);
			o.signal?.removeEventListener("abort", abort);
			wake?.();
		};
		// Stopped: what is still queued is not delivered.
		const abort = () => {
			queue.length = 0;
			close();
		};
		const w: Watcher = {
			push(ev) {
				if (ev.index <= from || !match(ev)) return;
				if (queue.length >= feed.capacity) {
					w.fail(
						new WatchCompactedError(
							`the watcher fell ${queue.length} changes behind (version ${queue[0]?.index})`,
							feed.floor,
						),
					);
					return;
				}
				queue.push(ev as ChangeEvent<T>);
				wake?.();
			},
			fail(err) {
				abort();
				failed = err;
			},
		};
		if (since !== undefined) for (const ev of this.after(since)) if (match(ev)) queue.push(ev as ChangeEvent<T>);
		if (o.signal?.aborted) abort();
		else {
			this.watchers.add(w);
			o.signal?.addEventListener("abort", abort, { once: true });
		}
		const it: AsyncIterableIterator<ChangeEvent<T>> = {
			async next(): Promise<IteratorResult<ChangeEvent<T>>> {
				for (;;) {
					const ev = queue.shift();
					if (ev) return { value: ev, done: false };
					if (failed) {
						const e = failed;
						failed = undefined;
						throw e;
					}
					if (done) return { value: undefined, done: true };
					await new Promise<void>((r) => {
						wake = r;
					});
					wake = undefined;
				}
			},
			async return(): Promise<IteratorResult<ChangeEvent<T>>> {
				abort();
				return { value: undefined, done: true };
			},
			[Symbol.asyncIterator]() {
				return it;
			},
		};
		return it;
	}
}
