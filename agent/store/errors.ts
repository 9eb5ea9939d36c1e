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
