// What the core asks its shell to do, in this order: persist `snapshot`, `entries` and `hardState`
// (one fsync), then send `messages`, then apply `committed` and answer `readStates`; then call
// advance(ready). Nothing here has happened until the shell says so.
import type { LogEntry, SnapshotMeta } from "../storage/types.ts";
import type { Message } from "./messages.ts";

export interface HardState {
	term: number;
	vote: string;
	commit: number;
}

export type RoleName = "follower" | "precandidate" | "candidate" | "leader";

export interface SoftState {
	role: RoleName;
	leader: string;
}

/** A ReadIndex round finished: reads issued with `ctx` are linearizable once `index` is applied. */
export interface ReadState {
	ctx: number;
	index: number;
}

export interface Ready {
	softState?: SoftState;
	hardState?: HardState;
	/** Entries to persist; they may overwrite the stored log from entries[0].index on. */
	entries: LogEntry[];
	/** A snapshot received from the leader, to persist and restore into the state machine. */
	snapshot?: { meta: SnapshotMeta; data: Uint8Array };
	committed: LogEntry[];
	messages: Message[];
	readStates: ReadState[];
	/** ReadIndex contexts that can no longer complete (leadership lost). */
	droppedReads: number[];
}
