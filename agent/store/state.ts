// The tables: a pure, deterministic state applying whole transactions or nothing, the same on every
// manager. Writes go in place with an undo log, so a transaction costs what its ops cost, never the
// table sizes; the name and secondary indexes move with every write and undo (see README.md).
import {
	InvalidObjectError,
	InvalidSnapshotError,
	InvalidTransactionError,
	NameInUseError,
	NotFoundError,
	type StoreError,
	VersionConflictError,
} from "./errors.ts";
import { TABLE_DEFS } from "./tables.ts";
import {
	type IndexedTable,
	type IndexName,
	LIMITS,
	type NamedTable,
	type Op,
	type RecordOf,
	type StoredRecord,
	TABLES,
	type Table,
	type TableTypes,
	type Transaction,
} from "./types.ts";

const tableSet: ReadonlySet<string> = new Set(TABLES);
type AnyObject = TableTypes[Table];
type AnyRecord = StoredRecord<AnyObject>;

/** A table definition with the object type erased: the state handles every table alike. */
interface Erased {
	validate(raw: unknown): AnyObject;
	name?(v: AnyObject): string;
	keys: Array<[string, (v: AnyObject) => string | undefined]>;
}

const erase = <T extends Table>(t: T): Erased => {
	const def = TABLE_DEFS[t];
	const keys: Array<[string, (v: AnyObject) => string | undefined]> = [];
	const idx: Record<string, (v: TableTypes[T]) => string | undefined> = def.indexes;
	// Every value a key function sees was validated as TableTypes[T] first.
	for (const [k, f] of Object.entries(idx)) keys.push([k, f as (v: AnyObject) => string | undefined]);
	const name = def.name;
	return {
		validate: (raw) => def.validate(raw),
		...(name ? { name: (v: AnyObject) => name(v as TableTypes[T]) } : {}),
		keys,
	};
};
const DEFS = new Map<Table, Erased>(TABLES.map((t) => [t, erase(t)]));
const defOf = (t: Table) => DEFS.get(t)!;

/** Checks a decoded transaction: its shape, then every value against its table's type. */
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
		if (op.op !== "delete") {
			const def = defOf(op.table as Table);
			const v = def.validate(op.value);
			if (v.id !== op.id)
				throw new InvalidObjectError(
					op.table.replace(/s$/, ""),
					"id",
					`must equal the operation's id ${JSON.stringify(op.id)} (got ${JSON.stringify(v.id)})`,
				);
		}
	});
	return tx as Transaction;
}

/** One table's rows and indexes. */
class TableData {
	readonly rows = new Map<string, AnyRecord>();
	readonly names = new Map<string, string>();
	readonly idx = new Map<string, Map<string, Set<string>>>();
	readonly def: Erased;
	constructor(def: Erased) {
		this.def = def;
		for (const [k] of def.keys) this.idx.set(k, new Map());
	}

	/** Replaces (or removes, with undefined) the row `id`, moving its index entries along. */
	put(id: string, next: AnyRecord | undefined): void {
		const cur = this.rows.get(id);
		if (cur) {
			if (this.def.name) {
				const n = this.def.name(cur.value);
				if (this.names.get(n) === id) this.names.delete(n);
			}
			for (const [k, key] of this.def.keys) {
				const v = key(cur.value);
				if (v === undefined) continue;
				const m = this.idx.get(k)!;
				const s = m.get(v);
				s?.delete(id);
				if (s?.size === 0) m.delete(v);
			}
		}
		if (!next) {
			this.rows.delete(id);
			return;
		}
		this.rows.set(id, next);
		if (this.def.name) this.names.set(this.def.name(next.value), id);
		for (const [k, key] of this.def.keys) {
			const v = key(next.value);
			if (v === undefined) continue;
			const m = this.idx.get(k)!;
			let s = m.get(v);
			if (!s) {
				s = new Set();
				m.set(v, s);
			}
			s.add(id);
		}
	}
}

export type ApplyResult =
	| { changes: Array<{ op: Op; record: AnyRecord; previous?: AnyRecord }> }
	| { error: StoreError };

export class StoreState {
	private readonly tables = new Map<Table, TableData>(TABLES.map((t) => [t, new TableData(defOf(t))]));

	private data(t: Table): TableData {
		return this.tables.get(t)!;
	}

	// The typed getters: every stored value passed its table's validator, so the narrowing is sound.
	get<T extends Table>(table: T, id: string): RecordOf<T> | undefined {
		return this.data(table).rows.get(id) as RecordOf<T> | undefined;
	}

	list<T extends Table>(table: T): RecordOf<T>[] {
		return [...this.data(table).rows.values()] as RecordOf<T>[];
	}

	count(table: Table): number {
		return this.data(table).rows.size;
	}

	/** A named table's record by name. */
	byName<T extends NamedTable>(table: T, name: string): RecordOf<T> | undefined {
		const d = this.data(table);
		const id = d.names.get(name);
		return id === undefined ? undefined : (d.rows.get(id) as RecordOf<T>);
	}

	/** The records whose index `by` has key `value` (e.g. the tasks of one service), in write order. */
	find<T extends IndexedTable>(table: T, q: { by: IndexName<T>; value: string }): RecordOf<T>[] {
		const d = this.data(table);
		const ids = d.idx.get(q.by)?.get(q.value);
		if (!ids) return [];
		const out: RecordOf<T>[] = [];
		for (const id of ids) out.push(d.rows.get(id) as RecordOf<T>);
		return out;
	}

	/** The distinct keys of an index and how many records each has (e.g. tasks per node). */
	keys<T extends IndexedTable>(table: T, by: IndexName<T>): Map<string, number> {
		const m = this.data(table).idx.get(by);
		return new Map([...(m ?? [])].map(([k, s]) => [k, s.size]));
	}

	/**
	 * Applies every op of `tx` (already checked by validateTransaction) at Raft index `index`, or
	 * none: the first op that does not hold undoes the ones before it and is returned as the error.
	 */
	apply(tx: Transaction, index: number): ApplyResult {
		const undo: Array<{ d: TableData; id: string; prev: AnyRecord | undefined }> = [];
		const changes: Array<{ op: Op; record: AnyRecord; previous?: AnyRecord }> = [];
		const fail = (error: StoreError): ApplyResult => {
			for (let i = undo.length - 1; i >= 0; i--) {
				const u = undo[i]!;
				u.d.put(u.id, u.prev);
			}
			return { error };
		};
		for (const op of tx.ops) {
			const d = this.data(op.table);
			const cur = d.rows.get(op.id);
			let next: AnyRecord | undefined;
			if (op.op === "create") {
				if (cur) return fail(new VersionConflictError(op.table, op.id, 0, cur.version));
				next = { id: op.id, version: index, createdIndex: index, value: op.value };
			} else if (op.op === "update") {
				if (!cur || cur.version !== op.version)
					return fail(new VersionConflictError(op.table, op.id, op.version, cur?.version ?? 0));
				next = { id: op.id, version: index, createdIndex: cur.createdIndex, value: op.value };
			} else {
				if (!cur) return fail(new NotFoundError(op.table.replace(/s$/, ""), op.id));
				if (op.version !== undefined && cur.version !== op.version)
					return fail(new VersionConflictError(op.table, op.id, op.version, cur.version));
			}
			if (next && d.def.name) {
				const name = d.def.name(next.value);
				const holder = d.names.get(name);
				if (holder !== undefined && holder !== op.id) return fail(new NameInUseError(op.table, name));
			}
			undo.push({ d, id: op.id, prev: cur });
			d.put(op.id, next);
			if (next) changes.push(cur ? { op, record: next, previous: cur } : { op, record: next });
			else changes.push({ op, record: cur! });
		}
		return { changes };
	}

	toSnapshot(): Record<string, AnyRecord[]> {
		return Object.fromEntries([...this.tables].map(([t, d]) => [t, [...d.rows.values()]]));
	}

	/** Rebuilds a state (and its indexes) from toSnapshot's output, checking every record. */
	static fromSnapshot(data: unknown): StoreState {
		const s = new StoreState();
		if (!data || typeof data !== "object" || Array.isArray(data))
			throw new InvalidSnapshotError("expected a map of tables");
		const d = data as Record<string, unknown>;
		for (const k of Object.keys(d)) if (!tableSet.has(k)) throw new InvalidSnapshotError(`unknown table ${k}`);
		for (const t of TABLES) {
			const rows = d[t] ?? [];
			if (!Array.isArray(rows)) throw new InvalidSnapshotError(`table ${t} is not a list`);
			const td = s.data(t);
			rows.forEach((raw: unknown, i: number) => {
				const at = `${t}[${i}]`;
				const r = raw as Partial<Record<string, unknown>>;
				if (!r || typeof r !== "object") throw new InvalidSnapshotError(`${at} is not a record`);
				if (typeof r.id !== "string" || r.id.length === 0) throw new InvalidSnapshotError(`${at} has no id`);
				if (!Number.isInteger(r.version) || !Number.isInteger(r.createdIndex))
					throw new InvalidSnapshotError(`${at} (${r.id}) needs integer version and createdIndex`);
				let value: AnyObject;
				try {
					value = td.def.validate(r.value);
				} catch (e) {
					throw new InvalidSnapshotError(`${at} (${r.id}): ${(e as Error).message}`);
				}
				if (value.id !== r.id) throw new InvalidSnapshotError(`${at}: value.id ${value.id} is not the record id`);
				if (td.rows.has(r.id)) throw new InvalidSnapshotError(`${at}: id ${r.id} appears twice`);
				if (td.def.name && td.names.has(td.def.name(value)))
					throw new InvalidSnapshotError(`${at}: name ${td.def.name(value)} appears twice`);
				td.put(r.id, { id: r.id, version: r.version as number, createdIndex: r.createdIndex as number, value });
			});
		}
		return s;
	}
}
