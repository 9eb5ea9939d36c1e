// Autopilot's loop on the leader: whenever node records or the cluster record change, and twice a
// second for the clocks (stabilization, dead threshold), it turns the store and Raft's view of each
// server into decide()'s input and carries out the first step decided, logging it with its reason.
import type { ClusterStore, Node, StoredRecord, StoreLogger } from "../../store/index.ts";
import { CLUSTER_ID } from "../../store/index.ts";
import { type LeaderComponent, reactiveLoop } from "../leader.ts";
import { onTables } from "../orchestrator/index.ts";
import {
	AUTOPILOT_DEFAULTS,
	type AutopilotAction,
	type AutopilotSettings,
	type CandidateNode,
	decide,
} from "./decide.ts";

export interface AutopilotOptions {
	/** Raft silent this long from a server: it is unhealthy (default 3 s; heartbeats are every 100 ms). */
	lastContactThresholdMs?: number;
	/** A server whose match index is within this many entries of the commit index is caught up (default 16). */
	catchUpSlack?: number;
	/** Between passes when nothing changes (default 500 ms). */
	everyMs?: number;
	/**
	 * Membership's view (id -> alive, suspect, dead, left), read once a pass: a node that left or
	 * is dead is unhealthy before the dispatcher says so (a new leader gives nodes a grace period).
	 */
	members?: () => ReadonlyMap<string, string>;
	/**
	 * A non-voter not caught up this long is stuck (default 2 min: a Pi's SD card and Wi-Fi take a
	 * store of a few MB in seconds): it loses its seat for `stuckForMs` (default 10 min), so a
	 * healthy node is promoted instead, and is not chosen again meanwhile.
	 */
	catchUpTimeoutMs?: number;
	stuckForMs?: number;
}

/** The libp2p address Raft dials a node at: its advertised ip:port and its id. */
export function raftAddress(n: Pick<Node, "id" | "addr">): string {
	const [ip, port] = n.addr.split(":");
	return `/ip4/${ip}/tcp/${port}/p2p/${n.id}`;
}

/** The cluster record's autopilot settings over the defaults. */
export function autopilotSettings(store: Pick<ClusterStore, "get">): AutopilotSettings {
	const a = store.get("cluster", CLUSTER_ID)?.value.autopilot ?? {};
	return { ...AUTOPILOT_DEFAULTS, ...a };
}

/** Per non-voter: behind since (ms epoch), and when it was found stuck. */
export interface CatchUpClock {
	behind: Map<string, number>;
	stuckAt: Map<string, number>;
}

export class Autopilot implements LeaderComponent {
	readonly name = "autopilot";
	private readonly store: ClusterStore;
	private readonly log: StoreLogger;
	private readonly o: Required<AutopilotOptions>;

	constructor(store: ClusterStore, log: StoreLogger, o: AutopilotOptions = {}) {
		this.store = store;
		this.log = log;
		this.o = {
			lastContactThresholdMs: 3000,
			catchUpSlack: 16,
			everyMs: 500,
			members: () => new Map(),
			catchUpTimeoutMs: 120_000,
			stuckForMs: 600_000,
			...o,
		};
	}

	run(signal: AbortSignal): Promise<void> {
		// Raft heard from nobody before this node led: until then, silence is not failure.
		const leaderSince = Date.now();
		const stable = new Map<string, number>();
		const unhealthy = new Map<string, number>();
		const catchUp: CatchUpClock = { behind: new Map(), stuckAt: new Map() };
		return reactiveLoop(
			signal,
			onTables(this.store, ["nodes", "cluster"]),
			async () => {
				if (signal.aborted) return;
				const nodes = this.candidates(leaderSince, stable, unhealthy, catchUp);
				const d = decide(nodes, autopilotSettings(this.store), Date.now());
				for (const a of d.actions.slice(0, 3)) {
					if (signal.aborted) return;
					if (await this.act(a)) break; // one step per pass: the next pass sees its effect
				}
			},
			this.o.everyMs,
		);
	}

	/** What decide() needs, from the records, the Raft configuration and the leader's replication state. */
	candidates(
		leaderSince: number,
		stable: Map<string, number>,
		unhealthy: Map<string, number>,
		catchUp: CatchUpClock,
	): CandidateNode[] {
		const now = Date.now();
		const stats = this.store.raftStats();
		const servers = new Map(this.store.configuration().servers.map((s) => [s.id, s.suffrage]));
		const self = this.store.id;
		const seen = new Set<string>();
		const members = this.o.members();
		// Servers a recovery left out hold the old configuration and log: none is added to Raft before
		// the fencer (agent/manager/fence.ts) has had it drop its old replica.
		const unfenced = new Set(this.store.get("cluster", CLUSTER_ID)?.value.recovery?.removed ?? []);
		const nodes = this.store.list("nodes").filter(({ value: n }) => !unfenced.has(n.id));
		const out = nodes.map(({ value: n, version }): CandidateNode => {
			seen.add(n.id);
			const suffrage = servers.get(n.id);
			const isSelf = n.id === self;
			const contactAt = Math.max(stats.lastContact[n.id] ?? 0, leaderSince);
			const raftFresh = isSelf || now - contactAt < this.o.lastContactThresholdMs;
			const member = members.get(n.id);
			const up = isSelf || (n.status?.state === "ready" && member !== "dead" && member !== "left");
			// A voter must also answer Raft; a non-voter may still be starting its replica.
			const healthy = suffrage === "voter" ? up && raftFresh : up;
			const match = stats.peers[n.id]?.match ?? 0;
			const caughtUp =
				isSelf || (suffrage !== undefined && raftFresh && match + this.o.catchUpSlack >= stats.commitIndex);
			if (up && caughtUp) {
				if (!stable.has(n.id)) stable.set(n.id, now);
			} else stable.delete(n.id);
			if (healthy) unhealthy.delete(n.id);
			else if (!unhealthy.has(n.id)) {
				// Since when: the dispatcher's down time or Raft's last contact, whichever came first.
				const downAt = n.status?.state === "down" ? Date.parse(n.status.timestamp) : Number.NaN;
				const staleAt = suffrage === "voter" && !raftFresh ? contactAt : Number.NaN;
				const at = Math.min(...[downAt, staleAt, now].filter((x) => Number.isFinite(x)));
				unhealthy.set(n.id, at);
			}
			const stuck = this.stuck(n.id, suffrage === "nonvoter" && !(up && caughtUp), now, catchUp);
			const createdAt = Date.parse(n.createdAt);
			return {
				id: n.id,
				role: n.role,
				preference: n.desiredRole ?? "auto",
				...(n.labels.zone !== undefined ? { zone: n.labels.zone } : {}),
				createdAt: Number.isFinite(createdAt) ? createdAt : 0,
				healthy,
				...(unhealthy.has(n.id) ? { unhealthySince: unhealthy.get(n.id)! } : {}),
				...(suffrage ? { suffrage } : {}),
				...(stable.has(n.id) ? { stableSince: stable.get(n.id)! } : {}),
				...(stuck ? { stuck } : {}),
				// Its log holds its record's latest version, or it stopped answering Raft (a node that
				// got its worker record in a snapshot stops its replica before acking past it).
				...(suffrage ? { sawRecord: isSelf || match >= version || !raftFresh } : {}),
				leader: isSelf,
			};
		});
		for (const id of [...stable.keys(), ...unhealthy.keys(), ...catchUp.behind.keys(), ...catchUp.stuckAt.keys()])
			if (!seen.has(id)) {
				catchUp.behind.delete(id);
				catchUp.stuckAt.delete(id);
				stable.delete(id);
				unhealthy.delete(id);
			}
		return out;
	}

	/**
	 * Whether a node is stuck: a non-voter behind for the catch-up timeout, and for stuckForMs after
	 * (whatever its state then: a node turned back to worker is not promoted again at once).
	 */
	private stuck(id: string, behind: boolean, now: number, c: CatchUpClock): boolean {
		if (behind) c.behind.set(id, c.behind.get(id) ?? now);
		else c.behind.delete(id);
		const since = c.behind.get(id);
		if (since !== undefined && now - since >= this.o.catchUpTimeoutMs && !c.stuckAt.has(id)) {
			c.stuckAt.set(id, now);
			this.log.warn(
				{ node: id, behindMs: now - since },
				"autopilot: a non-voter did not catch up within the catch-up timeout; its seat goes to another node",
			);
		}
		const at = c.stuckAt.get(id);
		if (at !== undefined && now - at >= this.o.stuckForMs && !behind) c.stuckAt.delete(id);
		return c.stuckAt.has(id);
	}

	/** Carry out one step; false when it could not be done (logged), so the pass tries the next. */
	async act(a: AutopilotAction): Promise<boolean> {
		const rec = this.store.get("nodes", a.id);
		const hostname = rec?.value.hostname;
		try {
			if (a.kind === "setRole") {
				if (!rec) return false;
				await this.writeRecord(rec, { role: a.role, roleReason: a.reason });
			} else {
				if (!rec && a.kind !== "removeServer") return false;
				if (a.kind === "addNonvoter") await this.store.addNonvoter(a.id, raftAddress(rec!.value));
				else if (a.kind === "addVoter") await this.store.addVoter(a.id, raftAddress(rec!.value));
				else if (a.kind === "demoteVoter") await this.store.demoteVoter(a.id);
				else if (a.kind === "removeServer") await this.store.removeServer(a.id);
				else if (a.kind === "transferLeadership") {
					this.log.info({ node: a.id, hostname, action: a.kind, reason: a.reason }, "autopilot: leadership transfer");
					await this.store.leadershipTransfer();
					return true;
				}
				// The step shows in `tsswarm events` as a change of the record's reason.
				const now = this.store.get("nodes", a.id);
				if (now) await this.writeRecord(now, { roleReason: a.reason }).catch(() => {});
			}
			this.log.info({ node: a.id, hostname, action: a.kind, reason: a.reason }, `autopilot: ${a.kind}`);
			return true;
		} catch (err) {
			this.log.warn(
				{ node: a.id, hostname, action: a.kind, reason: a.reason, err: (err as Error).message },
				`autopilot: ${a.kind} failed`,
			);
			return false;
		}
	}

	private async writeRecord(rec: StoredRecord<Node>, change: Partial<Node>): Promise<void> {
		const value: Node = { ...rec.value, ...change };
		await this.store.commit([{ op: "update", table: "nodes", id: rec.id, version: rec.version, value }]);
	}
}
