// The tables themselves: a pure, deterministic state that applies whole transactions or nothing.
// Used by the Raft FSM on every manager, in the same order, with the same results.
import {
	InvalidTransactionError,
	NameInUseError,
	NotFoundError,
	type StoreError,
	VersionConflictError,
} from "./errors.ts";
import { LIMITS, NAMED_TABLES, type Op, type StoredRecord, TABLES, type Table, type Transaction } from "./types.ts";

const tableSet: ReadonlySet<string> = new Set(TABLES);

/** Checks a decoded transaction's shape; throws InvalidTransactionError naming the first fault. */
export function validateTransaction(raw: unknown): Transaction {
	const tx = raw as { ops?: unknown };
	if (!tx || typeof tx !== "object" || !Array.isArray(tx.ops))
		throw new InvalidTransactionError("expected { ops: [...] }");
	if (tx.ops.length === 0) throw new InvalidTransactionError("no operations");
	if (tx.ops.length > LIMITS.opsPerTx) throw new InvalidTransactionError(`more than ${LIMITS.opsPerTx} operations`);
	tx.ops.forEach((o: unknown, i: number) => {
		const op = o as Partial<Record<string, unknown>>;
		const at = `operation ${i}`;
		if (!op || typeof op !== "object") throw new InvalidTransactionError(`${at} is not an object`);
		if (op.op !== "create" && op.op !== "update" && op.op !== "delete")
			throw new InvalidTransactionError(`${at}: unknown op ${JSON.stringify(op.op)}`);
		if (typeof op.table !== "string" || !tableSet.has(op.table))
			throw new InvalidTransactionError(`${at}: unknown table ${JSON.stringify(op.table)}`);
		if (typeof op.id !== "string" || op.id.length === 0 || Buffer.byteLength(op.id) > LIMITS.idBytes)
			throw new InvalidTransactionError(`${at}: id must be a string of 1 to ${LIMITS.idBytes} bytes`);
		if (op.op !== "delete" && (!op.value || typeof op.value !== "object" || Array.isArray(op.value)))
			throw new InvalidTransactionError(`${at}: value must be an object`);
		if (op.op === "update" && !Number.isInteger(op.version))
			throw new InvalidTransactionError(`${at}: update needs the version it read`);
		if (op.op === "delete" && op.version !== undefined && !Number.isInteger(op.version))
			throw new InvalidTransactionError(`${at}: version must be an integer`);
		if (
			NAMED_TABLES.has(op.table as Table) &&
			op.op !== "delete" &&
			typeof (op.value as { name?: unknown }).name !== "string"
		)
			throw new InvalidTransactionError(`${at}: ${op.table} records need a name`);
	});
	return tx as Transaction;
}

export class StoreState {
	private tables = new Map<Table, Map<string, StoredRecord>>(TABLES.map((t) => [t, new Map()]));

	get(table: Table, id: string): StoredRecord | undefined {
		return this.tables.get(table)!.get(id);
	}

	list(table: Table): StoredRecord[] {
		return [...this.tables.get(table)!.values()];
	}

	/** A named table's record by name. */
	byName(table: Table, name: string): StoredRecord | undefined {
		for (const r of this.tables.get(table)!.values()) if (r.value.name === name) return r;
		return undefined;
	}

	/**
	 * Applies every op of `tx` at Raft index `index`, or none: the first op that does not hold
	 * leaves the state as it was and is returned as the error.
	 */
	apply(tx: Transaction, index: number): { changes: Array<{ op: Op; record: StoredRecord }> } | { error: StoreError } {
		// Stage on a copy of just the touched tables, then swap them in.
		const staged = new Map<Table, Map<string, StoredRecord>>();
		const table = (t: Table) => {
			let m = staged.get(t);
			if (!m) {
				m = new Map(this.tables.get(t)!);
				staged.set(t, m);
			}
			return m;
		};
		const changes: Array<{ op: Op; record: StoredRecord }> = [];
		for (const op of tx.ops) {
			const m = table(op.table);
			const cur = m.get(op.id);
			if (op.op === "create") {
				if (cur) return { error: new VersionConflictError(op.table, op.id, 0, cur.version) };
				const name = op.value.name;
				if (NAMED_TABLES.has(op.table) && [...m.values()].some((r) => r.value.name === name))
					return { error: new NameInUseError(op.table, String(name)) };
				const record = { id: op.id, version: index, createdIndex: index, value: op.value };
				m.set(op.id, record);
				changes.push({ op, record });
			} else if (op.op === "update") {
				if (!cur || cur.version !== op.version)
					return { error: new VersionConflictError(op.table, op.id, op.version, cur?.version ?? 0) };
				const name = op.value.name;
				if (NAMED_TABLES.has(op.table) && [...m.values()].some((r) => r.id !== op.id && r.value.name === name))
					return { error: new NameInUseError(op.table, String(name)) };
				const record = { ...cur, version: index, value: op.value };
				m.set(op.id, record);
				changes.push({ op, record });
			} else {
				if (!cur) return { error: new NotFoundError(op.table.replace(/s$/, ""), op.id) };
				if (op.version !== undefined && cur.version !== op.version)
					return { error: new VersionConflictError(op.table, op.id, op.version, cur.version) };
				m.delete(op.id);
				changes.push({ op, record: cur });
			}
		}
		for (const [t, m] of staged) this.tables.set(t, m);
		return { changes };
	}

	toSnapshot(): Record<string, StoredRecord[]> {
		return Object.fromEntries([...this.tables].map(([t, m]) => [t, [...m.values()]]));
	}

	static fromSnapshot(data: unknown): StoreState {
		const s = new StoreState();
		const d = data as Record<string, StoredRecord[]>;
		if (!d || typeof d !== "object") throw new InvalidTransactionError("snapshot is not a table map");
		for (const t of TABLES) {
			const rows = d[t] ?? [];
			if (!Array.isArray(rows)) throw new InvalidTransactionError(`snapshot table ${t} is not a list`);
			s.tables.set(t, new Map(rows.map((r) => [r.id, r])));
		}
		return s;
	}
}
