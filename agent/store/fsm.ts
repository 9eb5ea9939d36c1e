// The store as Raft's state machine: each committed entry is one msgpackr transaction, applied
// whole or not at all. A malformed entry is refused (its proposer gets the error) and never stops
// the state machine: every manager refuses it the same way, so they stay identical.
import { EventEmitter } from "node:events";
import { pack, unpack } from "msgpackr";
import type { FSM, FSMSnapshot, LogEntry } from "../../consensus/index.ts";
import { StoreError } from "./errors.ts";
import { StoreState, validateTransaction } from "./state.ts";
import type { ChangeEvent, TxResult } from "./types.ts";

const SNAPSHOT_VERSION = 1;

export class StoreFSM extends EventEmitter<{ change: [ChangeEvent]; restored: [] }> implements FSM {
	state = new StoreState();
	appliedIndex = 0;

	apply(entry: LogEntry): TxResult {
		this.appliedIndex = entry.index;
		let r: ReturnType<StoreState["apply"]>;
		try {
			r = this.state.apply(validateTransaction(unpack(entry.data)), entry.index);
		} catch (err) {
			const e =
				err instanceof StoreError
					? err
					: new StoreError(`undecodable transaction: ${(err as Error).message}`, "ERR_INVALID_TX");
			return { ok: false, error: { code: e.code, message: e.message } };
		}
		if ("error" in r) return { ok: false, error: { code: r.error.code, message: r.error.message } };
		for (const { op, record } of r.changes) this.emit("change", { table: op.table, action: op.op, id: op.id, record });
		return { ok: true, versions: r.changes.map((c) => c.record.version) };
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
		this.emit("restored");
	}
}
