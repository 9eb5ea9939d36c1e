// What `service create`/`update` calls before storing a spec: every placement field the scheduler
// reads, checked once, so a bad constraint is refused with a named error instead of pending forever.
import { parseConstraints } from "./constraint.ts";
import { InvalidPlacementError } from "./errors.ts";
import { spreadValue } from "./spread.ts";
import type { SchedNode, SchedTaskSpec } from "./types.ts";

const PROTOCOLS = new Set(["tcp", "udp", "sctp"]);
const probe: SchedNode = {
	id: "",
	hostname: "",
	role: "",
	availability: "active",
	ready: true,
	labels: {},
	platform: { os: "", architecture: "" },
	resources: { nanoCpus: 0, memoryBytes: 0 },
};

/** Throws InvalidConstraintError or InvalidPlacementError for the first bad field. */
export function validatePlacement(spec: SchedTaskSpec): void {
	const p = spec.placement ?? {};
	parseConstraints(p.constraints ?? []);
	for (const pref of p.preferences ?? []) {
		if (typeof pref?.spread !== "string" || spreadValue(pref.spread, probe) === undefined) {
			throw new InvalidPlacementError(
				`spread ${JSON.stringify(pref?.spread)}: expected node.labels.K or engine.labels.K`,
			);
		}
	}
	const max = p.maxReplicasPerNode ?? 0;
	if (!Number.isSafeInteger(max) || max < 0) {
		throw new InvalidPlacementError(`max replicas per node ${max}: expected a whole number ≥ 0`);
	}
	for (const pl of p.platforms ?? []) {
		if (
			typeof pl?.os !== "string" ||
			typeof pl.architecture !== "string" ||
			(pl.variant !== undefined && typeof pl.variant !== "string")
		) {
			throw new InvalidPlacementError(`platform ${JSON.stringify(pl)}: expected {os, architecture, variant?}`);
		}
		if (!/^[a-z0-9_.-]*$/i.test(`${pl.os}${pl.architecture}${pl.variant ?? ""}`)) {
			throw new InvalidPlacementError(`platform ${JSON.stringify(pl)}: bad characters`);
		}
	}
	const r = spec.resources?.reservations ?? {};
	for (const [k, v] of Object.entries(r)) {
		if (!Number.isSafeInteger(v) || (v as number) < 0) {
			throw new InvalidPlacementError(`reservation ${k} ${v}: expected a whole number ≥ 0`);
		}
	}
	const ports = new Set<string>();
	for (const hp of spec.hostPorts ?? []) {
		if (!PROTOCOLS.has(hp?.protocol) || !Number.isInteger(hp.port) || hp.port < 1 || hp.port > 65535) {
			throw new InvalidPlacementError(`host port ${JSON.stringify(hp)}: expected tcp|udp|sctp and 1-65535`);
		}
		const k = `${hp.protocol}/${hp.port}`;
		if (ports.has(k)) throw new InvalidPlacementError(`host port ${k} published twice`);
		ports.add(k);
	}
}
