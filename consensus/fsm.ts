// What an application plugs into Raft: its state machine.
import type { LogEntry, SnapshotSink } from "./storage/types.ts";

export interface FSMSnapshot {
	/** Write the state into the sink (do not close it). */
	persist(sink: SnapshotSink): Promise<void>;
	release(): void;
}

export interface FSM {
	/** Apply one committed command; the return value resolves the apply() future of its proposer. */
	apply(entry: LogEntry): unknown | Promise<unknown>;
	/** Capture the current state (called between applies, so it is consistent). */
	snapshot(): FSMSnapshot | Promise<FSMSnapshot>;
	/** Replace the whole state with a snapshot's. */
	restore(data: Uint8Array): void | Promise<void>;
}
