// Autopilot's decisions as a pure function of what the leader sees (records, Raft configuration,
// health, catch-up): which nodes should vote, and the next steps to get there. No clock, no I/O,
// so every case (quorum, zones, pins, one removal at a time) is a unit test; loop.ts carries it out.
import type { RolePreference } from "../../nodes/index.ts";

export interface AutopilotSettings {
	/** Target voter count; undefined: 3, or 5 once 5+ nodes that may vote are healthy. */
	voters?: number;
	/** A voter unhealthy this long is removed from the Raft configuration. */
	deadServerThresholdMs: number;
	/** A non-voter must be caught up and healthy this long before it votes. */
	stabilizationMs: number;
	/** Automatic removals and demotions never take the voter count below this. */
	minQuorum: number;
}

/** The defaults (see README.md for why): 5 min dead threshold, 10 s stabilization, min quorum 3. */
export const AUTOPILOT_DEFAULTS: AutopilotSettings = {
	deadServerThresholdMs: 5 * 60_000,
	stabilizationMs: 10_000,
	minQuorum: 3,
};

export interface CandidateNode {
	id: string;
	/** The node record's role (who may speak Raft: the directory follows it). */
	role: "manager" | "worker";
	preference: RolePreference;
	zone?: string;
	/** Join time (ms epoch): older nodes are preferred among equals (stable choices). */
	createdAt: number;
	/** Heartbeats arrive (record status ready), and when in the configuration, Raft hears from it. */
	healthy: boolean;
	/** When it stopped being healthy (ms epoch); undefined while healthy or never seen healthy. */
	unhealthySince?: number;
	/** Its place in the Raft configuration, if any. */
	suffrage?: "voter" | "nonvoter";
	/** Its Raft log holds its record's latest version (so a demoted one learns it is a worker). */
	sawRecord?: boolean;
	/** Caught up and healthy continuously since (ms epoch); undefined: not now. */
	stableSince?: number;
	/**
	 * A non-voter that did not catch up within the catch-up timeout (or one that failed to lately):
	 * it holds no seat, so another node is promoted. A pinned manager keeps its seat regardless.
	 */
	stuck?: boolean;
	leader: boolean;
}

export type AutopilotAction =
	| { kind: "setRole"; id: string; role: "manager" | "worker"; reason: string }
	| { kind: "addNonvoter"; id: string; reason: string }
	| { kind: "addVoter"; id: string; reason: string }
	| { kind: "demoteVoter"; id: string; reason: string }
	| { kind: "removeServer"; id: string; reason: string }
	| { kind: "transferLeadership"; id: string; reason: string };

export interface Decision {
	/** How many voters autopilot aims for now. */
	target: number;
	/** The nodes that should vote, best first. */
	wanted: string[];
	/** The steps to take, most urgent first; the loop takes the first and decides again. */
	actions: AutopilotAction[];
}

const ms = (n: number) => (n >= 60_000 ? `${Math.round(n / 6000) / 10}m` : `${Math.round(n / 100) / 10}s`);

/** 3 voters, 5 once 5+ nodes may vote; never more than there are; odd when the count is what limits it. */
export function targetVoters(settings: Pick<AutopilotSettings, "voters">, available: number): number {
	const goal = settings.voters ?? (available >= 5 ? 5 : 3);
	if (available >= goal) return goal;
	// An even count tolerates no more failures than the odd one below it, and needs one more ack.
	return Math.max(1, available % 2 === 0 ? available - 1 : available);
}

/** May the voter set lose `x` and keep a majority of healthy voters? */
function quorumSafe(nodes: CandidateNode[], x: CandidateNode): boolean {
	const voters = nodes.filter((n) => n.suffrage === "voter" && n.id !== x.id);
	const healthy = voters.filter((n) => n.healthy).length;
	return voters.length > 0 && healthy > voters.length / 2;
}

/**
 * Rank the nodes that may vote and take the first `target` of them, greedily: pinned managers
 * first, then a zone with fewer voters chosen so far (a failed voter's zone first among equals),
 * then whoever votes already, the leader, a node already catching up, the oldest.
 */
function chooseVoters(pool: CandidateNode[], target: number, failedZones: Set<string>): CandidateNode[] {
	const chosen: CandidateNode[] = [];
	const perZone = new Map<string, number>();
	const rest = [...pool];
	const key = (n: CandidateNode): number[] => [
		n.preference === "manager" ? 0 : 1,
		n.zone === undefined ? 0 : (perZone.get(n.zone) ?? 0),
		n.zone !== undefined && failedZones.has(n.zone) ? 0 : 1,
		n.suffrage === "voter" ? 0 : 1,
		n.leader ? 0 : 1,
		n.suffrage === "nonvoter" ? 0 : 1,
		n.role === "manager" ? 0 : 1,
		n.createdAt,
	];
	const cmp = (a: CandidateNode, b: CandidateNode) => {
		const ka = key(a);
		const kb = key(b);
		for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
		return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
	};
	while (rest.length > 0 && (chosen.length < target || rest[0]?.preference === "manager")) {
		rest.sort(cmp);
		const best = rest[0]!;
		// Pinned managers all vote, even past the target: the user asked for them.
		if (chosen.length >= target && best.preference !== "manager") break;
		chosen.push(best);
		rest.shift();
		if (best.zone !== undefined) perZone.set(best.zone, (perZone.get(best.zone) ?? 0) + 1);
	}
	return chosen;
}

export function decide(nodes: CandidateNode[], settings: AutopilotSettings, now: number): Decision {
	const voters = nodes.filter((n) => n.suffrage === "voter");
	const deadFor = (n: CandidateNode) => (n.healthy ? 0 : now - (n.unhealthySince ?? now));
	const mayVote = (n: CandidateNode) => n.preference !== "worker";
	// A voter that failed recently still counts toward the size of the cluster (so one failure does
	// not shrink the target from 5 to 3 and back), but it holds no seat: a replacement is promoted.
	const recentlyFailed = voters.filter((n) => !n.healthy && mayVote(n) && deadFor(n) < settings.deadServerThresholdMs);
	const pool = nodes.filter((n) => n.healthy && mayVote(n) && !(n.stuck && n.preference !== "manager"));
	const target = targetVoters(settings, pool.length + recentlyFailed.length);
	const failedZones = new Set(voters.filter((n) => !n.healthy && n.zone !== undefined).map((n) => n.zone!));
	const wanted = chooseVoters(pool, target, failedZones);
	const isWanted = new Set(wanted.map((n) => n.id));
	const actions: AutopilotAction[] = [];
	const healthyWantedVoters = wanted.filter((n) => n.suffrage === "voter").length;

	// 1. Promotions: the record first (the node starts its Raft replica), then a non-voter, then a voter.
	for (const n of wanted) {
		if (n.suffrage === "voter") continue;
		const why = voters.some((v) => !v.healthy)
			? `replaces failed voter(s) ${voters
					.filter((v) => !v.healthy)
					.map((v) => v.id.slice(-8))
					.join(", ")}`
			: `the cluster wants ${target} voters, has ${healthyWantedVoters}`;
		const where = n.zone !== undefined ? ` (zone ${n.zone})` : "";
		if (n.role === "worker")
			actions.push({ kind: "setRole", id: n.id, role: "manager", reason: `promoted${where}: ${why}` });
		else if (n.suffrage === undefined)
			actions.push({ kind: "addNonvoter", id: n.id, reason: `catching up${where}: ${why}` });
		else if (n.stableSince !== undefined && now - n.stableSince >= settings.stabilizationMs)
			actions.push({
				kind: "addVoter",
				id: n.id,
				reason: `voter${where}: caught up and healthy for ${ms(now - n.stableSince)}; ${why}`,
			});
	}

	// 2. A voter dead past the threshold leaves the configuration: one at a time, never below minQuorum.
	const dead = voters
		.filter((n) => !n.healthy && deadFor(n) >= settings.deadServerThresholdMs)
		.sort((a, b) => deadFor(b) - deadFor(a))[0];
	if (dead && voters.length - 1 >= settings.minQuorum && quorumSafe(nodes, dead))
		actions.push({
			kind: "removeServer",
			id: dead.id,
			reason: `removed: unhealthy for ${ms(deadFor(dead))} (threshold ${ms(settings.deadServerThresholdMs)})`,
		});

	// 3. Healthy voters that should not vote, once the wanted ones all vote (the tolerance stays
	// meanwhile): pinned workers, and extras when no failed voter is left to remove first (demoting a
	// healthy one beside a dead one would leave no failure to spare) and minQuorum allows.
	const full = healthyWantedVoters >= wanted.length;
	const failedVoters = voters.some((v) => !v.healthy);
	for (const n of voters) {
		if (!full || !n.healthy || isWanted.has(n.id)) continue;
		const pinned = n.preference === "worker";
		if (!pinned && (failedVoters || voters.length - 1 < settings.minQuorum)) continue;
		if (!quorumSafe(nodes, n)) continue;
		const reason = pinned ? "demoted: pinned to the worker role" : `demoted: more voters than the ${target} wanted`;
		if (n.leader)
			actions.push({ kind: "transferLeadership", id: n.id, reason: `${reason} (hands leadership away first)` });
		else actions.push({ kind: "demoteVoter", id: n.id, reason });
		break; // one demotion at a time
	}

	// 4. Records and the configuration agree: non-voters not wanted stop, then leave the configuration.
	// A manager record outside the configuration that is not healthy may be a joiner whose first
	// heartbeat is still to come (the manager token's grant adds it as a non-voter itself): it is
	// turned back to worker only once it has been unhealthy for the dead threshold.
	for (const n of nodes) {
		if (isWanted.has(n.id) || n.suffrage === "voter") continue;
		if (n.role === "manager" && n.suffrage === undefined && !n.healthy && deadFor(n) < settings.deadServerThresholdMs)
			continue;
		if (n.role === "manager")
			actions.push({
				kind: "setRole",
				id: n.id,
				role: "worker",
				reason:
					n.suffrage === undefined && !n.healthy
						? "demoted: a manager record, not a Raft server, and down"
						: n.preference === "worker"
							? "demoted: pinned to the worker role"
							: n.stuck
								? "demoted: its replica did not catch up within the catch-up timeout"
								: "demoted: not needed as a voter",
			});
		else if (n.suffrage === "nonvoter" && (!n.healthy || n.sawRecord !== false))
			actions.push({ kind: "removeServer", id: n.id, reason: "left the Raft configuration: a worker now" });
	}
	return { target, wanted: wanted.map((n) => n.id), actions };
}
