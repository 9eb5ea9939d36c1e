// `tsswarm swarm update --voters/--dead-threshold/--stabilization/--min-quorum`: the request checked
// whole, then written into the cluster record on the leader (every leader's autopilot reads it there).
import { CLUSTER_ID, type ClusterStore, NotFoundError, VersionConflictError } from "../../store/index.ts";
import { AUTOPILOT_DEFAULTS, type AutopilotSettings } from "./decide.ts";
import { InvalidAutopilotSettingsError } from "./errors.ts";

/** What may change; `voters: null` returns the target to automatic (3, or 5 with 5+ nodes). */
export interface AutopilotUpdate {
	voters?: number | null;
	deadServerThresholdMs?: number;
	stabilizationMs?: number;
	minQuorum?: number;
}

const LIMITS = {
	deadServerThresholdMs: [1000, 30 * 24 * 3_600_000, "1s to 30 days"],
	stabilizationMs: [0, 3_600_000, "0 to 1 hour"],
	minQuorum: [1, 9, "1 to 9"],
} as const;

export function parseAutopilotUpdate(raw: Record<string, unknown>): AutopilotUpdate {
	const out: AutopilotUpdate = {};
	for (const k of Object.keys(raw))
		if (!["voters", ...Object.keys(LIMITS)].includes(k)) throw new InvalidAutopilotSettingsError(`unknown field ${k}`);
	if (raw.voters !== undefined) {
		if (
			raw.voters !== null &&
			(!Number.isSafeInteger(raw.voters) || (raw.voters as number) < 1 || (raw.voters as number) > 9)
		)
			throw new InvalidAutopilotSettingsError(`voters must be 1 to 9 (or auto), got ${JSON.stringify(raw.voters)}`);
		out.voters = raw.voters as number | null;
	}
	for (const [k, [min, max, text]] of Object.entries(LIMITS) as Array<
		[keyof typeof LIMITS, readonly [number, number, string]]
	>) {
		const v = raw[k];
		if (v === undefined) continue;
		if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max)
			throw new InvalidAutopilotSettingsError(`${k} must be ${text}, got ${JSON.stringify(v)}`);
		out[k] = v as number;
	}
	if (Object.keys(out).length === 0) throw new InvalidAutopilotSettingsError("nothing to change");
	return out;
}

/** On the leader: merge the update into the cluster record (retried on a concurrent write). */
export async function updateAutopilot(
	store: ClusterStore,
	u: AutopilotUpdate,
): Promise<{ index: number; settings: AutopilotSettings }> {
	for (let attempt = 0; ; attempt++) {
		const cur = store.get("cluster", CLUSTER_ID);
		if (!cur) throw new NotFoundError("cluster record", CLUSTER_ID);
		const next = { ...cur.value.autopilot };
		for (const [k, v] of Object.entries(u)) {
			if (v === null) delete next[k as keyof typeof next];
			else next[k as keyof typeof next] = v;
		}
		try {
			const { index } = await store.commit([
				{
					op: "update",
					table: "cluster",
					id: CLUSTER_ID,
					version: cur.version,
					value: { ...cur.value, autopilot: next },
				},
			]);
			return { index, settings: { ...AUTOPILOT_DEFAULTS, ...next } };
		} catch (err) {
			if (!(err instanceof VersionConflictError) || attempt >= 5) throw err;
		}
	}
}
