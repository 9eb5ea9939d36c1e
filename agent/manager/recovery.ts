// tsswarm init --force-new-cluster, the manager's part: after raft-ts rewrote the configuration to
// this server alone (ClusterStore.recover), wait until it leads its one-voter cluster and say what
// it kept and which former servers are out (their node records stay, Down, for node rm or autopilot).
import type { RecoveryResult } from "../../consensus/index.ts";
import { AgentError } from "../errors.ts";
import type { ClusterStore } from "../store/index.ts";

export interface RecoverySummary {
	/** The Raft index and term of the recovery snapshot (the last entry this server had). */
	index: number;
	term: number;
	/** Log entries replayed on top of the newest snapshot. */
	replayed: number;
	kept: { services: number; networks: number; tasks: number; nodes: number; secrets: number; configs: number };
	/** Servers of the old configuration that are not in the new one. */
	removed: Array<{ id: string; hostname?: string; suffrage: "voter" | "nonvoter" }>;
}

export async function summarizeRecovery(
	store: ClusterStore,
	r: RecoveryResult,
	o: { timeoutMs: number },
): Promise<RecoverySummary> {
	const leader = await store.waitForLeader(o.timeoutMs);
	if (leader.id !== store.id)
		throw new AgentError(`after recovery ${leader.id} leads, not this server`, "ERR_RECOVERY");
	return {
		index: r.index,
		term: r.term,
		replayed: r.replayed,
		kept: {
			services: store.count("services"),
			networks: store.count("networks"),
			tasks: store.count("tasks"),
			nodes: store.count("nodes"),
			secrets: store.count("secrets"),
			configs: store.count("configs"),
		},
		removed: r.previous.servers
			.filter((s) => s.id !== store.id)
			.map((s) => {
				const hostname = store.get("nodes", s.id)?.value.hostname;
				return { id: s.id, suffrage: s.suffrage, ...(hostname ? { hostname } : {}) };
			}),
	};
}
