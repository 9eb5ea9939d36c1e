// The pre-change StoreState.apply, kept as the reference: stage each transaction on a copy of every
// table it touches and scan names linearly. bench/store measures against it; the store's property
// test checks the in-place algorithm against it.
import { NAMED_TABLES, type Op, type StoredRecord, TABLES, type Table } from "../../agent/store/index.ts";

const nameOf = (r: StoredRecord): string | undefined => {
	const v = r.value as { name?: string; spec?: { name?: string } };
	return v.spec?.name ?? v.name;
};

export class FullCopyBaseline {
	tables = new Map<Table, Map<string, StoredRecord>>(TABLES.map((t) => [t, new Map()]));

	/** Applies `ops` whole or not at all; returns the failing op's error code. */
	apply(ops: Op[], index: number): string | undefined {
		const staged = new Map<Table, Map<string, StoredRecord>>();
		for (const op of ops) {
			let m = staged.get(op.table);
			if (!m) {
				m = new Map(this.tables.get(op.table));
				staged.set(op.table, m);
			}
			const cur = m.get(op.id);
			if (op.op === "delete") {
				if (!cur) return "ERR_NOT_FOUND";
				if (op.version !== undefined && op.version !== cur.version) return "ERR_VERSION_CONFLICT";
				m.delete(op.id);
				continue;
			}
			if (op.op === "create" ? cur : !cur || cur.version !== op.version) return "ERR_VERSION_CONFLICT";
			const next = { id: op.id, version: index, createdIndex: cur?.createdIndex ?? index, value: op.value };
			const name = nameOf(next);
			if (NAMED_TABLES.has(op.table) && [...m.values()].some((r) => r.id !== op.id && nameOf(r) === name))
				return "ERR_NAME_IN_USE";
			m.set(op.id, next);
		}
		for (const [t, m] of staged) this.tables.set(t, m);
		return undefined;
	}
}
