// The shell's configuration, with hashicorp-style defaults and validation.
import { BadConfigError } from "./errors.ts";

export interface Logger {
	debug(obj: object, msg?: string): void;
	info(obj: object, msg?: string): void;
	warn(obj: object, msg?: string): void;
	error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface RaftConfig {
	localId: string;
	/** One core tick; heartbeats go out every heartbeatTicks, elections after electionTicks (randomized up to 2x). */
	tickMs: number;
	heartbeatTicks: number;
	electionTicks: number;
	preVote: boolean;
	checkQuorum: boolean;
	maxAppendEntries: number;
	maxAppendBytes: number;
	maxInflight: number;
	/** Take a snapshot when this many entries were applied since the last one. */
	snapshotThreshold: number;
	/** Entries kept in the log behind a snapshot, so slightly slow followers need no snapshot. */
	trailingLogs: number;
	/** InstallSnapshot data goes out in chunks of this size (keep it below the transport's frame bound). */
	snapshotChunkBytes: number;
	/** Largest snapshot a follower accepts from a leader. */
	maxSnapshotBytes: number;
	/** Largest command accepted by apply(). */
	maxCommandBytes: number;
	logger: Logger;
}

export function defaultConfig(localId: string): RaftConfig {
	return {
		localId,
		tickMs: 50,
		heartbeatTicks: 2,
		electionTicks: 20,
		preVote: true,
		checkQuorum: true,
		maxAppendEntries: 512,
		maxAppendBytes: 1 << 20,
		maxInflight: 64,
		snapshotThreshold: 8192,
		trailingLogs: 10240,
		snapshotChunkBytes: 1 << 20,
		maxSnapshotBytes: 2 ** 31 - 1,
		maxCommandBytes: 8 << 20,
		logger: silentLogger,
	};
}

export function validateConfig(c: RaftConfig): RaftConfig {
	const positive = [
		"tickMs",
		"heartbeatTicks",
		"electionTicks",
		"maxAppendEntries",
		"maxAppendBytes",
		"maxInflight",
		"snapshotChunkBytes",
		"maxSnapshotBytes",
	] as const;
	if (!c.localId) throw new BadConfigError("localId must be set");
	for (const k of positive) {
		if (!Number.isInteger(c[k]) || c[k] <= 0) throw new BadConfigError(`${k} must be a positive integer, got ${c[k]}`);
	}
	if (c.electionTicks < 2 * c.heartbeatTicks) {
		throw new BadConfigError(
			`electionTicks (${c.electionTicks}) must be at least twice heartbeatTicks (${c.heartbeatTicks})`,
		);
	}
	if (!Number.isInteger(c.snapshotThreshold) || c.snapshotThreshold < 1)
		throw new BadConfigError("snapshotThreshold must be >= 1");
	if (!Number.isInteger(c.trailingLogs) || c.trailingLogs < 0) throw new BadConfigError("trailingLogs must be >= 0");
	return c;
}
