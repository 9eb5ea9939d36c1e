// A worker has no store: it keeps its node directory (its allow-list) by asking a manager over
// /tsswarm/manager/1 now and then, and sooner when a peer it does not know yet knocks. Replies are
// checked whole before they replace anything; a manager is trusted because Noise proved its id.
import type { Host } from "../host/index.ts";
import { type DirectoryEntry, type NodeDirectory, validateEntries } from "./directory.ts";
import { BadDirectoryReplyError } from "./errors.ts";

/** The manager-protocol request that returns the directory (see Manager). */
export const NODES_LIST = "nodes.list";

export type NodesListReply = { version: number; unchanged: true } | { version: number; nodes: DirectoryEntry[] };

export interface SyncLogger {
	warn(obj: object, msg?: string): void;
	debug(obj: object, msg?: string): void;
}

export interface DirectorySyncOptions {
	host: Host;
	directory: NodeDirectory;
	/** The manager protocol id (agent/manager's MANAGER_PROTOCOL). */
	protocol: string;
	logger: SyncLogger;
	/** Between two refreshes (default 5 s); a refresh asked for sooner waits at least minGapMs (1 s). */
	intervalMs?: number;
	minGapMs?: number;
}

export class DirectorySync {
	private readonly o: DirectorySyncOptions;
	private timer: NodeJS.Timeout | undefined;
	private running: Promise<void> | undefined;
	private last = 0;
	private stopped = false;
	/** soon() while a refresh was under way: another one right after it (it may predate the change). */
	private again = false;

	constructor(o: DirectorySyncOptions) {
		this.o = o;
	}

	start(): void {
		this.stopped = false;
		this.schedule(0);
	}

	stop(): void {
		this.stopped = true;
		clearTimeout(this.timer);
	}

	/**
	 * Refresh soon: a peer we do not know knocked (it may have joined since our last look), or the
	 * leader said our record changed (dispatch's directory notice).
	 */
	soon(): void {
		if (this.stopped) return;
		if (this.running) {
			this.again = true;
			return;
		}
		this.schedule(Math.max(0, this.last + (this.o.minGapMs ?? 1000) - Date.now()));
	}

	/** A manager says the directory changed at store version `version`: refresh unless ours is that new. */
	changedAt(version: number): void {
		if (version > this.o.directory.version) this.soon();
	}

	private schedule(ms: number): void {
		clearTimeout(this.timer);
		this.timer = setTimeout(() => {
			this.running = this.refresh().then(() => {
				this.running = undefined;
				if (this.stopped) return;
				if (this.again) {
					this.again = false;
					this.soon();
				} else this.schedule(this.o.intervalMs ?? 5000);
			});
		}, ms);
		this.timer.unref();
	}

	/** Ask the managers, in random order, until one answers; true when the directory is current. */
	async refresh(): Promise<boolean> {
		this.last = Date.now();
		const managers = this.o.directory.managers().sort(() => Math.random() - 0.5);
		for (const m of managers) {
			try {
				// By id (the peer store knows where it is now); the directory's address is a hint.
				const reply = await this.o.host.session(
					m.id,
					this.o.protocol,
					async (io) => {
						io.send({ kind: NODES_LIST, body: { since: this.o.directory.version } });
						return io.next();
					},
					{ timeoutMs: 3000, hint: m.addr },
				);
				this.apply(m.id, reply);
				return true;
			} catch (err) {
				this.o.logger.debug({ manager: m.id, err: (err as Error).message }, "node directory refresh failed");
			}
		}
		return false;
	}

	private apply(from: string, raw: unknown): void {
		const next = parseNodesListReply(from, raw, this.o.directory.version);
		if (next) this.o.directory.set(next.entries, next.version);
	}
}

/**
 * A manager's answer to nodes.list, checked whole: the new directory, or undefined when ours
 * stays (unchanged, or the manager lags behind one we asked before). Throws BadDirectoryReplyError.
 */
export function parseNodesListReply(
	from: string,
	raw: unknown,
	current: number,
): { entries: DirectoryEntry[]; version: number } | undefined {
	const r = raw as { ok?: Partial<NodesListReply> & { nodes?: unknown }; error?: { message?: string } } | null;
	if (!r?.ok) throw new BadDirectoryReplyError(from, r?.error?.message ?? "no answer");
	const version = r.ok.version;
	if (!Number.isSafeInteger(version) || (version as number) < 0)
		throw new BadDirectoryReplyError(from, "version is not a non-negative integer");
	if ("unchanged" in r.ok && r.ok.unchanged === true) return undefined;
	const entries = validateEntries(from, r.ok.nodes);
	// A directory without the manager that sent it is not one we can keep using.
	if (!entries.some((e) => e.id === from && e.role === "manager"))
		throw new BadDirectoryReplyError(from, "the directory does not name its sender as a manager");
	if ((version as number) < current) return undefined;
	return { entries, version: version as number };
}
