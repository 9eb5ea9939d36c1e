// The store's data model: typed tables of versioned records, written only by transactions.
// A record's version is the Raft index of the entry that last wrote it (swarmkit's Meta.Version),
// so it is the same on every manager and serves optimistic concurrency.
import type { StoreError } from "./errors.ts";
import type { Cluster, Config, Network, Node, Secret, Service, Task } from "./objects.ts";

/** Which object type each table holds: the store's getters return these, no casts. */
export interface TableTypes {
	cluster: Cluster;
	nodes: Node;
	services: Service;
	tasks: Task;
	networks: Network;
	secrets: Secret;
	configs: Config;
}

export type Table = keyof TableTypes;
export const TABLES: readonly Table[] = ["cluster", "nodes", "services", "tasks", "networks", "secrets", "configs"];

/** Secondary indexes per table (besides the unique name index of named tables). */
export interface TableIndexes {
	cluster: never;
	nodes: "role" | "availability";
	services: never;
	tasks: "serviceId" | "nodeId" | "desiredState";
	networks: never;
	secrets: never;
	configs: never;
}
export type IndexName<T extends Table> = TableIndexes[T];
/** Tables that have at least one secondary index (the ones `find` accepts). */
export type IndexedTable = { [T in Table]: [TableIndexes[T]] extends [never] ? never : T }[Table];

/** Tables whose records carry a name that must be unique within the table. */
export type NamedTable = "services" | "networks" | "secrets" | "configs";
export const NAMED_TABLES: ReadonlySet<Table> = new Set<Table>(["services", "networks", "secrets", "configs"]);

export interface StoredRecord<T = TableTypes[Table]> {
	id: string;
	version: number;
	/** Raft index of the entry that created it. */
	createdIndex: number;
	value: T;
}

/** A record of table T. */
export type RecordOf<T extends Table> = StoredRecord<TableTypes[T]>;

type OpsOf<T extends Table> =
	/** Fails if the id exists (or, in a named table, the name is taken). */
	| { op: "create"; table: T; id: string; value: TableTypes[T] }
	/** Fails unless the record exists at exactly `version`. */
	| { op: "update"; table: T; id: string; version: number; value: TableTypes[T] }
	/** Fails unless the record exists (at `version`, when given). */
	| { op: "delete"; table: T; id: string; version?: number };

/** One typed operation: `value` must be the type of `table` (value.id must equal id). */
export type Op = { [T in Table]: OpsOf<T> }[Table];

export interface Transaction {
	ops: Op[];
}

/**
 * What applying one transaction returned on this replica. The error is the store's own class
 * (VersionConflictError, NameInUseError...): the leader's commit rethrows it, so a caller's
 * `instanceof` retry works; only answers forwarded from another manager travel as code + message.
 */
export type TxResult = { ok: true; versions: number[] } | { ok: false; error: StoreError };

/** One change to one record, at Raft index `index` (all changes of one transaction share it). */
export type ChangeEvent<T extends Table = Table> = {
	[K in T]: {
		index: number;
		table: K;
		action: "create" | "update" | "delete";
		id: string;
		/** The record as written (for a delete: as it was last). */
		record: StoredRecord<TableTypes[K]>;
		/** For an update: the record it replaced. */
		previous?: StoredRecord<TableTypes[K]>;
	};
}[T];

/** Bounds on what a transaction may hold, checked before anything is applied. */
export const LIMITS = { opsPerTx: 1024, idBytes: 128 } as const;
