// Freshness against replay: every packet carries the sender's boot id (random per start), a
// sequence number and a wall-clock stamp, all under the MAC. A receiver keeps a sliding window per
// boot, so a byte-identical re-send is dropped, and a restarted sender (new boot) starts afresh.
import { randomBytes } from "node:crypto";

export const BOOT_BYTES = 8;
/** Accepted sequences trail the highest seen by this much (UDP reorders; full state goes in bursts). */
export const WINDOW = 1024;
const MAX_SEQ = 0xffff_ffff;

export interface Freshness {
	boot: Uint8Array;
	seq: number;
	/** Sender's wall clock, ms. */
	ts: number;
}

/** One sender life: a random boot id and a counter; a new boot when the counter would wrap. */
export class FreshnessSource {
	private boot = randomBytes(BOOT_BYTES);
	private seq = 0;
	private readonly wall: () => number;

	constructor(wall: () => number = Date.now) {
		this.wall = wall;
	}

	next(): Freshness {
		if (this.seq >= MAX_SEQ) {
			this.boot = randomBytes(BOOT_BYTES);
			this.seq = 0;
		}
		return { boot: this.boot, seq: ++this.seq, ts: Math.max(0, Math.round(this.wall())) };
	}
}

interface Window {
	top: number;
	bits: Uint32Array;
}

/** Per-boot sliding windows (IPsec-style bitmap of the last WINDOW sequences), LRU-bounded. */
export class ReplayWindows {
	private readonly windows = new Map<string, Window>();
	private readonly max: number;

	constructor(max = 4096) {
		this.max = max;
	}

	get size(): number {
		return this.windows.size;
	}

	/** Accept (and remember) seq from boot, or say why not. */
	check(boot: Uint8Array, seq: number): "ok" | "seen" | "old" {
		const key = Buffer.from(boot).toString("latin1");
		let w = this.windows.get(key);
		if (w) this.windows.delete(key);
		else {
			if (this.windows.size >= this.max) this.windows.delete(this.windows.keys().next().value!);
			w = { top: seq, bits: new Uint32Array(WINDOW / 32) };
		}
		this.windows.set(key, w); // most recently used last
		if (seq > w.top) {
			if (seq - w.top >= WINDOW) w.bits.fill(0);
			else for (let s = w.top + 1; s <= seq; s++) clear(w.bits, s);
			w.top = seq;
		} else if (w.top - seq >= WINDOW) return "old";
		if (test(w.bits, seq)) return "seen";
		set(w.bits, seq);
		return "ok";
	}
}

const slot = (s: number) => s % WINDOW;
const test = (b: Uint32Array, s: number) => (b[slot(s) >>> 5]! & (1 << (slot(s) & 31))) !== 0;
const set = (b: Uint32Array, s: number) => {
	b[slot(s) >>> 5]! |= 1 << (slot(s) & 31);
};
const clear = (b: Uint32Array, s: number) => {
	b[slot(s) >>> 5]! &= ~(1 << (slot(s) & 31));
};
