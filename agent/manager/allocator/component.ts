// The allocator as a leader loop: a pass on start and after every change it is told of, its ops
// committed in order (a failed commit, e.g. a version conflict, just waits for the next change).
// The store is behind a small port so this file does not depend on the store's API.
import { allocate } from "./allocate.ts";
import type { AllocInput, AllocOp, AllocResult } from "./types.ts";

export interface AllocatorSource {
	/** The records as of now (one consistent read). */
	read(): Omit<AllocInput, "now">;
	/** One transaction; rejects if it could not be applied (e.g. a record moved on). */
	commit(ops: AllocOp[]): Promise<void>;
	/** Calls `onChange` after any change of services, tasks or networks; returns the unsubscribe. */
	subscribe(onChange: () => void): () => void;
}

export interface AllocatorLogger {
	warn(o: object, msg: string): void;
	debug(o: object, msg: string): void;
}

export interface AllocatorOptions {
	source: AllocatorSource;
	now?: () => number;
	log?: AllocatorLogger;
	/** Ops per transaction (the store bounds a transaction; default 500). */
	batch?: number;
}

export class AllocatorComponent {
	private o: AllocatorOptions;
	private abort: AbortController | undefined;
	private loop: Promise<void> | undefined;
	private dirty = false;
	private wake: (() => void) | undefined;
	private unsubscribe: (() => void) | undefined;
	/** The last pass's result (for `service ps`-like diagnostics and tests). */
	last: AllocResult | undefined;
	/** Passes run so far. */
	passes = 0;

	constructor(o: AllocatorOptions) {
		this.o = o;
	}

	start(): void {
		if (this.abort) return;
		const abort = new AbortController();
		this.abort = abort;
		this.dirty = true;
		this.unsubscribe = this.o.source.subscribe(() => this.poke());
		this.loop = this.run(abort.signal);
	}

	async stop(): Promise<void> {
		if (!this.abort) return;
		this.abort.abort();
		this.unsubscribe?.();
		this.wake?.();
		await this.loop;
		this.abort = undefined;
		this.loop = undefined;
	}

	private poke(): void {
		this.dirty = true;
		this.wake?.();
	}

	private async run(signal: AbortSignal): Promise<void> {
		while (!signal.aborted) {
			if (!this.dirty) {
				await new Promise<void>((resolve) => {
					this.wake = resolve;
				});
				this.wake = undefined;
				continue;
			}
			this.dirty = false;
			await this.pass(signal);
		}
	}

	/** One pass: read, allocate, commit (in batches, in order, stopping at the first refusal). */
	async pass(signal?: AbortSignal): Promise<AllocResult> {
		const result = allocate({ ...this.o.source.read(), now: (this.o.now ?? Date.now)() });
		this.passes++;
		this.last = result;
		const batch = this.o.batch ?? 500;
		for (let i = 0; i < result.ops.length && !signal?.aborted; i += batch) {
			try {
				await this.o.source.commit(result.ops.slice(i, i + batch));
			} catch (err) {
				this.o.log?.warn({ err, ops: result.ops.length }, "allocator: commit refused; retrying after the next change");
				break;
			}
		}
		if (result.pending.length > 0) this.o.log?.debug({ pending: result.pending.slice(0, 20) }, "allocator: pending");
		return result;
	}
}
