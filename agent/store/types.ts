// The store's data model: named tables of versioned records, written only by transactions.
// A record's version is the Raft index of the entry that last wrote it (swarmkit's Meta.Version),
// so it is the same on every manager and serves optimistic concurrency.

export const TABLES = ["cluster", "nodes", "services", "tasks", "networks", "secrets", "configs"] as const;
export type Table = (typeof TABLES)[number];

/** Tables whose records carry a `name` that must be unique within the table. */
export const NAMED_TABLES: ReadonlySet<Table> = new Set(["services", "networks", "secrets", "configs"]);

export interface StoredRecord<T = Record<string, unknown>> {
	id: string;
	version: number;
	/** Raft index of the entry that created it. */
	createdIndex: number;
	value: T;
}

export type Op =
	/** Fails if the id exists (or, in a named table, the name is taken). */
	| { op: "create"; table: Table; id: string; value: Record<string, unknown> }
	/** Fails unless the record exists at exactly `version`. */
	| { op: "update"; table: Table; id: string; version: number; value: Record<string, unknown> }
	/** Fails unless the record exists (at `version`, when given). */
	| { op: "delete"; table: Table; id: string; version?: number };

export interface Transaction {
	ops: Op[];
}

export type TxResult = { ok: true; versions: number[] } | { ok: false; error: { code: string; message: string } };

export interface ChangeEvent {
	table: Table;
	action: "create" | "update" | "delete";
	id: string;
	record: StoredRecord;
}

/** Bounds on what a transaction may hold, checked before anything is applied. */
export const LIMITS = { opsPerTx: 1024, idBytes: 128 } as const;
