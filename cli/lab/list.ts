// What labs exist under the lab root, and whether anyone still looks after each.
import { isStale } from "./destroy.ts";
import { isRunning, labRoot, listRecordNames, readRecord } from "./state.ts";

export interface LabSummary {
	name: string;
	status: string;
	nodes: number;
	registry?: string;
	persistent: boolean;
	stale: boolean;
	createdAt?: string;
	error?: string;
	/** Per node: platform, agent state and cut (a cluster lab's failures at a glance). */
	nodeDetails?: Array<{ name: string; address: string; platform?: string; agent?: string; cut?: boolean }>;
}

export function listLabs(root = labRoot()): LabSummary[] {
	return listRecordNames(root).map((name) => {
		try {
			const rec = readRecord(root, name);
			if (!rec) return { name, status: "unknown", nodes: 0, persistent: false, stale: true, error: "no lab.json" };
			return {
				name,
				status: rec.status,
				nodes: rec.nodes.length,
				registry: rec.registry?.url,
				persistent: rec.persistent,
				stale: isStale(rec),
				createdAt: rec.createdAt,
				nodeDetails: rec.nodes.map((n) => ({
					name: n.name,
					address: n.address,
					...(n.platform ? { platform: n.platform } : {}),
					...(n.agent ? { agent: n.agent.process && isRunning(n.agent.process) ? "running" : "stopped" } : {}),
					...(n.cut ? { cut: true } : {}),
				})),
			};
		} catch (err) {
			return { name, status: "unreadable", nodes: 0, persistent: false, stale: false, error: (err as Error).message };
		}
	});
}
