// What labs exist under the lab root, and whether anyone still looks after each.
import { isStale } from "./destroy.ts";
import { labRoot, listRecordNames, readRecord } from "./state.ts";

export interface LabSummary {
	name: string;
	status: string;
	nodes: number;
	registry?: string;
	persistent: boolean;
	stale: boolean;
	createdAt?: string;
	error?: string;
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
			};
		} catch (err) {
			return { name, status: "unreadable", nodes: 0, persistent: false, stale: false, error: (err as Error).message };
		}
	});
}
