// Named errors of the cluster store. Each has a stable `code`; the control API passes it to the CLI.
import { AgentError } from "../errors.ts";

export class StoreError extends AgentError {
	override name = "StoreError";
}

/** A transaction that is not well formed (unknown table, op or shape); nothing was written. */
export class InvalidTransactionError extends StoreError {
	static override status = 400;
	override name = "InvalidTransactionError";
	constructor(why: string) {
		super(`invalid store transaction: ${why}`, "ERR_INVALID_TX");
	}
}

/** Optimistic concurrency: the record changed (or appeared, or vanished) since it was read. */
export class VersionConflictError extends StoreError {
	static override status = 409;
	override name = "VersionConflictError";
	constructor(table: string, id: string, want: number, got: number) {
		super(
			`${table}/${id} is at version ${got}, the update expected ${want}: it changed meanwhile; read it again`,
			"ERR_VERSION_CONFLICT",
		);
	}
}

/** A record value that does not match its table's type; `field` is the path of the first fault. */
export class InvalidObjectError extends StoreError {
	override name = "InvalidObjectError";
	readonly kind: string;
	readonly field: string;
	constructor(kind: string, field: string, why: string) {
		super(`invalid ${kind}: ${field} ${why}`, "ERR_INVALID_OBJECT");
		this.kind = kind;
		this.field = field;
	}
}

/** A snapshot whose tables or records are not well formed; the state it would replace is kept. */
export class InvalidSnapshotError extends StoreError {
	override name = "InvalidSnapshotError";
	constructor(why: string) {
		super(`invalid store snapshot: ${why}`, "ERR_INVALID_SNAPSHOT");
	}
}

/**
 * A watch cannot resume from the version asked for: the changes after it are no longer kept (or the
 * watcher fell too far behind, or a snapshot replaced the state). The caller lists again and
 * watches from the version of that list, like etcd's "required revision has been compacted".
 */
export class WatchCompactedError extends StoreError {
	override name = "WatchCompactedError";
	/** The oldest version a new watch may resume from. */
	readonly floor: number;
	constructor(why: string, floor: number) {
		super(`${why}; list again and watch from that list's version (at least ${floor})`, "ERR_WATCH_COMPACTED");
		this.floor = floor;
	}
}

export class NameInUseError extends StoreError {
	static override status = 409;
	override name = "NameInUseError";
	constructor(table: string, name: string) {
		super(`${table.replace(/s$/, "")} with name ${name} already exists`, "ERR_NAME_IN_USE");
	}
}

export class NotFoundError extends StoreError {
	static override status = 404;
	override name = "NotFoundError";
	constructor(what: string, id: string) {
		super(`${what} ${id} not found`, "ERR_NOT_FOUND");
	}
}

/** Cluster state lives on managers; a worker has no store to read or write. */
export class NotManagerError extends StoreError {
	static override status = 409;
	override name = "NotManagerError";
	constructor() {
		super(
			"this node is not a manager: worker nodes cannot view or modify cluster state; run the command on a manager",
			"ERR_NOT_MANAGER",
		);
	}
}

/** No leader is known (an election is under way, or quorum is lost). */
export class NoLeaderError extends StoreError {
	static override status = 503;
	override name = "NoLeaderError";
	constructor(why = "no leader is elected (quorum may be lost); try again when a majority of managers is up") {
		super(why, "ERR_NO_LEADER");
	}
}

/** An error the leader answered with: its code and message, and the HTTP status its class had there. */
export class RemoteStoreError extends StoreError {
	override name = "RemoteStoreError";
	private readonly remoteStatus: number;
	constructor(message: string, code: string, status: number) {
		super(message, code);
		this.remoteStatus = status;
	}
	override get status(): number {
		return this.remoteStatus;
	}
}

/** Rebuilds an error from its code, message and status: answers from the leader travel as data. */
export function storeErrorFrom(e: { code?: string; message?: string; status?: unknown }): StoreError {
	const status = typeof e.status === "number" && Number.isInteger(e.status) && e.status >= 400 && e.status < 600;
	return new RemoteStoreError(e.message ?? "store error", e.code ?? "ERR_STORE", status ? (e.status as number) : 500);
}
