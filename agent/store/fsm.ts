// The store as Raft's state machine: each committed entry is one msgpackr transaction, applied
// whole or not at all. A malformed entry is refused (its proposer gets the error) and never stops
// the state machine: every manager refuses it the same way, so they stay identical.
import { EventEmitter } from "node:events";
import { pack, unpack } from "msgpackr";
import type { FSM, FSMSnapshot, LogEntry } from "../../consensus/index.ts";
import { StoreError } from "./errors.ts";
import { type ApplyResult, StoreState, validateTransaction } from "./state.ts";
import type { ChangeEvent, TxResult } from "./types.ts";
import { ChangeFeed } from "./watch.ts";

// 2: every value is a typed, validated object carrying its id (see objects.ts).
const SNAPSHOT_VERSION = 2;

export interface StoreFSMOptions {
	/** How many changes watch() can replay (the ring of watch.ts). */
	watchHistory?: number;
}

export class StoreFSM extends EventEmitter<{ change: [ChangeEvent]; restored: [] }> implements FSM {
	state = new StoreState();
	appliedIndex = 0;
	readonly feed: ChangeFeed;

	constructor(o: StoreFSMOptions = {}) {
		super();
		this.feed = new ChangeFeed(o.watchHistory);
	}

	apply(entry: LogEntry): TxResult {
		this.appliedIndex = entry.index;
		let r: ApplyResult;
		try {
			r = this.state.apply(validateTransaction(unpack(entry.data)), entry.index);
		} catch (err) {
			const e =
				err instanceof StoreError
					? err
					: new StoreError(`undecodable transaction: ${(err as Error).message}`, "ERR_INVALID_TX");
			return { ok: false, error: e };
		}
		if ("error" in r) return { ok: false, error: r.error };
		const versions: number[] = [];
		for (const { op, record, previous } of r.changes) {
			// The op's table and the record's type agree (the state wrote one from the other).
			const ev = { index: entry.index, table: op.table, action: op.op, id: op.id, record, previous } as ChangeEvent;
			if (!previous) delete ev.previous;
			this.feed.push(ev);
			this.emit("change", ev);
			versions.push(record.version);
		}
		return { ok: true, versions };
	}

	snapshot(): FSMSnapshot {
		// Taken between applies, so one pack is a consistent copy.
		const data = pack({ v: SNAPSHOT_VERSION, index: this.appliedIndex, tables: this.state.toSnapshot() });
		return { persist: (sink) => sink.write(data), release() {} };
	}

	restore(data: Uint8Array): void {
		const s = unpack(data) as { v?: number; index?: number; tables?: unknown };
		if (s?.v !== SNAPSHOT_VERSION)
			throw new StoreError(`unknown store snapshot version ${s?.v}`, "ERR_SNAPSHOT_VERSION");
		this.state = StoreState.fromSnapshot(s.tables);
		this.appliedIndex = s.index ?? 0;
		this.feed.reset(this.appliedIndex);
		this.emit("restored");
	}
}
