// A linearizability checker for a key-value register history (Wing & Gong search with Lowe's
// memoization, per key: a KV history is linearizable iff each key's sub-history is).

export interface KvOp {
	client: number;
	key: string;
	kind: "put" | "get";
	/** put: the value written; get: the value read ("" = absent). */
	value: string;
	call: number;
	/** Infinity when the outcome is unknown (the op may or may not have taken effect). */
	ret: number;
}

export interface CheckResult {
	ok: boolean;
	/** The key whose history has no linearization. */
	key?: string;
	ops?: KvOp[];
}

export function checkLinearizable(history: readonly KvOp[], budget = 2_000_000): CheckResult {
	const byKey = new Map<string, KvOp[]>();
	for (const op of history) {
		// A get whose result never came back constrains nothing.
		if (op.kind === "get" && op.ret === Number.POSITIVE_INFINITY) continue;
		const list = byKey.get(op.key) ?? [];
		list.push(op);
		byKey.set(op.key, list);
	}
	for (const [key, ops] of byKey) {
		if (!checkKey(ops, budget)) return { ok: false, key, ops };
	}
	return { ok: true };
}

function checkKey(ops: KvOp[], budget: number): boolean {
	const n = ops.length;
	const sorted = [...ops].sort((a, b) => a.call - b.call);
	const seen = new Set<string>();
	let steps = 0;
	const done = new Uint8Array(n);
	const search = (state: string, remaining: number): boolean => {
		if (remaining === 0) return true;
		if (++steps > budget) throw new Error(`linearizability check exceeded its budget on ${n} ops`);
		const memo = `${state}|${done.join("")}`;
		if (seen.has(memo)) return false;
		seen.add(memo);
		let minRet = Number.POSITIVE_INFINITY;
		for (let i = 0; i < n; i++) if (!done[i] && sorted[i]!.ret < minRet) minRet = sorted[i]!.ret;
		for (let i = 0; i < n; i++) {
			if (done[i]) continue;
			const op = sorted[i]!;
			// Only an op that nobody pending finished before may come next (real-time order).
			if (op.call > minRet) break;
			let next: string;
			if (op.kind === "put") next = op.value;
			else if (op.value === state) next = state;
			else continue;
			done[i] = 1;
			if (search(next, remaining - 1)) return true;
			done[i] = 0;
		}
		// An unknown-outcome put may also never have happened: drop the pending ones at the end.
		if (sorted.every((op, i) => done[i] || (op.kind === "put" && op.ret === Number.POSITIVE_INFINITY))) return true;
		return false;
	};
	return search("", n);
}
