// The allocator's inputs and outputs as plain data: versioned records in, whole-value updates out,
// so the pass does not depend on the store's API (the component adapts it).
import type { Service, Task } from "../../services/index.ts";

/** A stored record as the allocator reads it (the store's StoredRecord fits). */
export interface Versioned<T> {
	id: string;
	version: number;
	value: T;
}

/** What the allocator needs of a network record (agent/manager/networks.ts's NetworkRecord fits). */
export interface AllocNetwork {
	name: string;
	subnet: string;
	gateway: string;
	ingress?: boolean;
}

export interface AllocInput {
	services: ReadonlyArray<Versioned<Service>>;
	tasks: ReadonlyArray<Versioned<Task>>;
	networks: ReadonlyArray<Versioned<AllocNetwork>>;
	/** The cluster record; not read yet (node ingress endpoints will need its pools). */
	cluster?: Versioned<unknown>;
	/** ms epoch, for status timestamps. */
	now: number;
}

/** A store write: the whole new value of a record at the version it was read. */
export type AllocOp =
	| { op: "update"; table: "services"; id: string; version: number; value: Service }
	| { op: "update"; table: "tasks"; id: string; version: number; value: Task };

/** Why a service or a task could not be allocated this pass. */
export interface Pending {
	table: "services" | "tasks";
	id: string;
	reason: string;
}

export interface AllocResult {
	ops: AllocOp[];
	pending: Pending[];
}

/** Dynamic published ports (Swarm's range). */
export const DYNAMIC_PORTS = { min: 30000, max: 32767 } as const;

/** Status of a task the allocator has finished with (the scheduler takes it from here). */
export const ALLOCATED_MESSAGE = "pending task scheduling";
/** Status message of a task the allocator could not finish (its reason is in status.err). */
export const WAITING_MESSAGE = "pending task allocation";
