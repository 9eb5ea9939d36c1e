// Disaster recovery after a lost quorum (hashicorp/raft's RecoverCluster): on a stopped server's
// own stores, rebuild its state machine from the newest snapshot plus every entry of its log, save
// that as a snapshot that carries a new configuration, and compact the log, so the new
// configuration is durable and no old configuration entry can come back. The term is kept.
import { unpack } from "msgpackr";
import type { Logger } from "./config.ts";
import { decodeConfiguration, type HardState, validateConfiguration } from "./core/index.ts";
import { RecoveryRefusedError } from "./errors.ts";
import type { FSM } from "./fsm.ts";
import { HARD_STATE_KEY } from "./raft.ts";
import type { Configuration, LogStore, SnapshotMeta, SnapshotStore, StableStore } from "./storage/types.ts";

export interface RecoveryResult {
	/** The index and term of the recovery snapshot: the last entry of the log (or the snapshot's). */
	index: number;
	term: number;
	/** The term in the stable store, unchanged by recovery. */
	currentTerm: number;
	/** The snapshot written (its configuration is the new one). */
	snapshotId: string;
	/** The index of the snapshot the state machine was restored from first (0: none). */
	restoredFrom: number;
	/** Log entries replayed after that snapshot, and how many of them were commands. */
	replayed: number;
	commands: number;
	/** The configuration this server followed before (the last one in its snapshot or log). */
	previous: Configuration;
	configuration: Configuration;
}

/** Whether a server has any Raft state: a log, a term, or a snapshot (hashicorp's HasExistingState). */
export async function hasExistingState(logs: LogStore, stable: StableStore, snaps: SnapshotStore): Promise<boolean> {
	return (
		(await logs.lastIndex()) > 0 || (await stable.get(HARD_STATE_KEY)) !== undefined || (await snaps.list()).length > 0
	);
}

const BATCH = 512;

/**
 * Force `configuration` on a server whose stores are not in use (no Raft runs on them). Like
 * hashicorp's RecoverCluster this treats every entry of the log as committed: entries that were
 * being replicated when quorum was lost may take effect. Give it a fresh FSM and discard that FSM
 * afterwards; the Raft started next restores from the snapshot written here.
 *
 * Crash safety: nothing changes until the new snapshot is durable (closed). From then on a start
 * uses it (it is the newest, and log entries at or below its index are ignored); the compaction
 * after it only removes what it supersedes.
 */
export async function recoverCluster(
	fsm: FSM,
	logs: LogStore,
	stable: StableStore,
	snaps: SnapshotStore,
	configuration: Configuration,
	o: { logger?: Logger } = {},
): Promise<RecoveryResult> {
	validateConfiguration(configuration);
	if (!(await hasExistingState(logs, stable, snaps)))
		throw new RecoveryRefusedError(
			"this server has no Raft state (no log, no term, no snapshot); start a new cluster instead",
		);
	const hsRaw = await stable.get(HARD_STATE_KEY);
	const currentTerm = hsRaw ? (unpack(hsRaw) as HardState).term : 0;
	const first = await logs.firstIndex();
	const last = await logs.lastIndex();

	// The newest snapshot that opens, restores, and that the log continues (else entries are missing).
	const snapshots = await snaps.list();
	let snap: SnapshotMeta | undefined;
	for (const s of snapshots) {
		if (last > s.index && first > s.index + 1) {
			o.logger?.warn({ snapshot: s.id, index: s.index, logFirst: first }, "recovery: snapshot does not reach the log");
			continue;
		}
		try {
			const { meta, data } = await snaps.open(s.id);
			await fsm.restore(data);
			snap = meta;
			break;
		} catch (err) {
			o.logger?.warn({ snapshot: s.id, err: (err as Error).message }, "recovery: skipping an unreadable snapshot");
		}
	}
	if (snapshots.length > 0 && !snap)
		throw new RecoveryRefusedError("no snapshot could be restored that the log continues from");
	if (!snap && last > 0 && first !== 1)
		throw new RecoveryRefusedError(`there is no snapshot and the log starts at ${first}, not 1`);

	// Replay everything after the snapshot, as hashicorp does (the commit index is not durable).
	let index = snap?.index ?? 0;
	let term = snap?.term ?? 0;
	let previous: Configuration = snap?.configuration ?? { servers: [] };
	let replayed = 0;
	let commands = 0;
	for (let lo = index + 1; lo <= last; lo += BATCH) {
		const batch = await logs.getLogs(lo, Math.min(last, lo + BATCH - 1));
		for (const e of batch) {
			if (e.index !== index + 1)
				throw new RecoveryRefusedError(`the log jumps from index ${index} to ${e.index}: entries are missing`);
			if (e.type === "command") {
				await fsm.apply(e);
				commands++;
			} else if (e.type === "configuration") previous = decodeConfiguration(e.data);
			index = e.index;
			term = e.term;
			replayed++;
		}
		if (batch.length === 0) throw new RecoveryRefusedError(`the log has no entry at ${lo} (it ends at ${last})`);
	}

	// The new configuration, in force as of the last entry; then nothing older can override it.
	const state = await fsm.snapshot();
	let id: string;
	try {
		const sink = await snaps.create({ index, term, configuration, configurationIndex: index });
		id = sink.id;
		try {
			await state.persist(sink);
			await sink.close();
		} catch (err) {
			await sink.cancel();
			throw err;
		}
	} finally {
		state.release();
	}
	if (last > 0) await logs.deleteRange(first, last);
	o.logger?.info(
		{ index, term, currentTerm, restoredFrom: snap?.index ?? 0, replayed, commands, servers: configuration.servers },
		"raft configuration recovered",
	);
	return {
		index,
		term,
		currentTerm,
		snapshotId: id,
		restoredFrom: snap?.index ?? 0,
		replayed,
		commands,
		previous,
		configuration,
	};
}
