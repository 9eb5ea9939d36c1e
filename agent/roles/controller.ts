// This node's role follows its record: when the directory (the store's nodes table, or a manager's
// copy on a worker) says manager, the node starts its Raft replica; when it says worker, it stops
// it. Transitions run one at a time and are retried; a manager cut off from every leader asks the
// other managers whether it was demoted meanwhile (a removed server hears nothing more by Raft).
import type { NodeDirectory, NodeRole } from "../nodes/index.ts";

export interface RoleLogger {
	info(obj: object, msg?: string): void;
	warn(obj: object, msg?: string): void;
}

export interface RoleControllerOptions {
	/** This node's id. */
	self: string;
	directory: NodeDirectory;
	logger: RoleLogger;
	/** The role this node runs now (its state.json). */
	current(): NodeRole;
	/** Start the manager side (agent: key material hook, Manager.start, persist role=manager). */
	becomeManager(reason: string): Promise<void>;
	/** Stop it (agent: Manager.stop, raft dir removed, directory sync, persist role=worker). */
	becomeWorker(reason: string): Promise<void>;
	/** On a manager: whether its replica follows a leader now. */
	hasLeader(): boolean;
	/**
	 * Whether the directory can be trusted to say this node's role: on a manager, its replica has
	 * applied all it knows committed (one still replaying its log sees its own old records).
	 */
	directoryCurrent(): boolean;
	/**
	 * On a manager: whether its replica lists this node as a voter. Autopilot takes the vote away
	 * before the record says worker, so a worker record beside a vote is one the replica has not
	 * caught up past; a voter's replica is never deleted on it.
	 */
	votes(): boolean;
	/** Ask other managers for this node's record role (undefined: nobody answered). */
	probeRole(): Promise<NodeRole | undefined>;
	/** How long a manager may be without a leader before it asks (default 10 s). */
	orphanMs?: number;
	/** Between checks (default 2 s). */
	everyMs?: number;
}

export class RoleController {
	private readonly o: RoleControllerOptions;
	private timer: NodeJS.Timeout | undefined;
	private busy: Promise<void> | undefined;
	private again = false;
	private leaderlessSince: number | undefined;
	/** After the others said "worker": the stale directory of the old replica is not followed back. */
	private staleVersion: number | undefined;
	private stopped = true;
	private readonly onChanged = () => this.check();

	constructor(o: RoleControllerOptions) {
		this.o = o;
	}

	start(): void {
		this.stopped = false;
		this.o.directory.on("changed", this.onChanged);
		this.timer = setInterval(() => this.check(), this.o.everyMs ?? 2000);
		this.timer.unref();
		this.check();
	}

	/** Stops watching; waits for a transition under way. */
	async stop(): Promise<void> {
		this.stopped = true;
		this.o.directory.off("changed", this.onChanged);
		clearInterval(this.timer);
		clearTimeout(this.soonTimer);
		this.soonTimer = undefined;
		await this.busy;
	}

	/**
	 * Told by the recovered cluster's leader that a recovery left this manager out: stop the old
	 * replica now, and do not follow its stale directory back to manager (a newer one from the
	 * recovered cluster is followed).
	 */
	fenced(reason: string): void {
		this.fencedFor = reason;
		this.check();
	}

	/** Compare the record's role with the running one (coalesced: one transition at a time). */
	check(): void {
		if (this.stopped) return;
		if (this.busy) {
			this.again = true;
			return;
		}
		this.busy = this.step()
			.catch((err: Error) => this.o.logger.warn({ err: err.message }, "role change failed; retrying"))
			.finally(() => {
				this.busy = undefined;
				if (this.again) {
					this.again = false;
					this.check();
				}
			});
	}

	private soonTimer: NodeJS.Timeout | undefined;
	private soon(): void {
		if (this.soonTimer || this.stopped) return;
		this.soonTimer = setTimeout(() => {
			this.soonTimer = undefined;
			this.check();
		}, 200);
		this.soonTimer.unref();
	}

	/** A fence to carry out (it goes before the record: the record is the old replica's). */
	private fencedFor: string | undefined;

	private async step(): Promise<void> {
		const wanted = this.o.directory.get(this.o.self)?.role;
		const now = this.o.current();
		if (this.fencedFor !== undefined) {
			if (now === "manager") {
				this.leaderlessSince = undefined;
				await this.o.becomeWorker(this.fencedFor);
				// The old replica's versions count a history the recovered cluster does not share (they
				// may be higher than its own, and a lower version is taken for a lagging manager's): the
				// directory starts again from 0, and only a version from the recovered cluster is followed.
				this.o.directory.set(this.o.directory.list(), 0);
				this.staleVersion = 0;
			}
			this.fencedFor = undefined; // kept on a failure: the next check tries again
			return;
		}
		if (this.staleVersion !== undefined && this.o.directory.version !== this.staleVersion)
			this.staleVersion = undefined;
		const voting = wanted === "worker" && now === "manager" && this.o.votes();
		const current = this.o.directoryCurrent();
		// A replica a few entries short of the leader's commit is current a moment later: look again
		// soon rather than at the next period (the applies that get it there change no record).
		if (wanted && wanted !== now && !voting && !current) this.soon();
		if (wanted && wanted !== now && !voting && current && this.staleVersion === undefined) {
			this.leaderlessSince = undefined;
			this.o.logger.info({ from: now, to: wanted }, "this node's record changed role: following it");
			if (wanted === "manager") await this.o.becomeManager("the record says manager");
			else await this.o.becomeWorker("the record says worker");
			return;
		}
		if (now !== "manager") return;
		if (this.o.hasLeader()) {
			this.leaderlessSince = undefined;
			return;
		}
		this.leaderlessSince ??= Date.now();
		if (Date.now() - this.leaderlessSince < (this.o.orphanMs ?? 10_000)) return;
		this.leaderlessSince = Date.now(); // ask again one period later, not at every check
		const role = await this.o.probeRole();
		if (role === "worker" && !this.stopped) {
			this.o.logger.info({}, "no leader, and the other managers' record of this node says worker: demoting");
			this.staleVersion = this.o.directory.version;
			await this.o.becomeWorker("removed from the Raft configuration while away");
		}
	}
}
