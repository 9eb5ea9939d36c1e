// A binary min-heap over an array, with an optional callback that tells each item its position,
// so the spread can re-sift or remove a branch in place when its task count changes.

export class Heap<T> {
	readonly #items: T[];
	readonly #less: (a: T, b: T) => boolean;
	readonly #moved: ((item: T, index: number) => void) | undefined;

	/** Takes ownership of `items` and orders them in O(n). */
	constructor(items: T[], less: (a: T, b: T) => boolean, moved?: (item: T, index: number) => void) {
		this.#items = items;
		this.#less = less;
		this.#moved = moved;
		if (moved) for (let i = 0; i < items.length; i++) moved(items[i] as T, i);
		for (let i = (items.length >> 1) - 1; i >= 0; i--) this.#down(i);
	}

	get size(): number {
		return this.#items.length;
	}

	peek(): T | undefined {
		return this.#items[0];
	}

	push(item: T): void {
		this.#items.push(item);
		this.#moved?.(item, this.#items.length - 1);
		this.#up(this.#items.length - 1);
	}

	pop(): T | undefined {
		return this.removeAt(0);
	}

	removeAt(i: number): T | undefined {
		const items = this.#items;
		if (i < 0 || i >= items.length) return undefined;
		const item = items[i] as T;
		const last = items.pop() as T;
		if (i < items.length) {
			items[i] = last;
			this.#moved?.(last, i);
			this.fix(i);
		}
		this.#moved?.(item, -1);
		return item;
	}

	/** Restores the order after the item at `i` changed. */
	fix(i: number): void {
		if (!this.#up(i)) this.#down(i);
	}

	#swap(i: number, j: number): void {
		const items = this.#items;
		const a = items[i] as T;
		const b = items[j] as T;
		items[i] = b;
		items[j] = a;
		if (this.#moved) {
			this.#moved(b, i);
			this.#moved(a, j);
		}
	}

	#up(i: number): boolean {
		const items = this.#items;
		const start = i;
		while (i > 0) {
			const parent = (i - 1) >> 1;
			if (!this.#less(items[i] as T, items[parent] as T)) break;
			this.#swap(i, parent);
			i = parent;
		}
		return i !== start;
	}

	#down(i: number): void {
		const items = this.#items;
		const n = items.length;
		for (;;) {
			const l = 2 * i + 1;
			if (l >= n) return;
			const r = l + 1;
			const c = r < n && this.#less(items[r] as T, items[l] as T) ? r : l;
			if (!this.#less(items[c] as T, items[i] as T)) return;
			this.#swap(i, c);
			i = c;
		}
	}
}
