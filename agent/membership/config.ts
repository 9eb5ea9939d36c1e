// Tunables, after memberlist's LAN/WAN profiles and Lifeguard's defaults.
import { BadConfigError } from "./errors.ts";

export interface MembershipConfig {
	/** How often each member probes one other. */
	probeIntervalMs: number;
	/** How long a direct ping may take before indirect probes start. */
	probeTimeoutMs: number;
	/** Members asked to probe on our behalf (k). */
	indirectChecks: number;
	/** Suspicion lasts suspicionMult * log10(n+1) probe intervals at least... */
	suspicionMult: number;
	/** ...and up to this multiple of that minimum while no one confirms. */
	suspicionMaxTimeoutMult: number;
	/** Each update is piggybacked retransmitMult * log10(n+1) times. */
	retransmitMult: number;
	/** Full state exchange with a random member this often (0 = off). */
	pushPullIntervalMs: number;
	/** Lifeguard local health: probe timing scales up to this factor when we are slow. */
	awarenessMax: number;
	/** Largest encoded member metadata. */
	maxMetaBytes: number;
	/** Largest packet sent or accepted. */
	maxPacketBytes: number;
}

export function lanConfig(): MembershipConfig {
	return {
		probeIntervalMs: 500,
		probeTimeoutMs: 250,
		indirectChecks: 3,
		suspicionMult: 4,
		suspicionMaxTimeoutMult: 6,
		retransmitMult: 4,
		pushPullIntervalMs: 15_000,
		awarenessMax: 8,
		maxMetaBytes: 1024,
		maxPacketBytes: 60_000,
	};
}

/** Lossy, slow edge links: slower probes, longer suspicion, more retransmits. */
export function wanConfig(): MembershipConfig {
	return {
		...lanConfig(),
		probeIntervalMs: 2000,
		probeTimeoutMs: 1500,
		suspicionMult: 6,
		retransmitMult: 5,
		pushPullIntervalMs: 60_000,
	};
}

export function validateConfig(c: MembershipConfig): MembershipConfig {
	for (const [k, v] of Object.entries(c)) {
		if (typeof v !== "number" || !Number.isFinite(v) || v < 0)
			throw new BadConfigError(`${k} must be a non-negative number, got ${v}`);
	}
	if (c.probeTimeoutMs >= c.probeIntervalMs) throw new BadConfigError("probeTimeoutMs must be below probeIntervalMs");
	if (c.indirectChecks < 1 || c.suspicionMult < 1 || c.retransmitMult < 1 || c.awarenessMax < 1) {
		throw new BadConfigError("indirectChecks, suspicionMult, retransmitMult and awarenessMax must be at least 1");
	}
	return c;
}
