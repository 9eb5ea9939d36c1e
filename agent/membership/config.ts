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
	/** ...but never less than this... */
	suspicionMinMs: number;
	/** ...and up to this multiple of that minimum while no one confirms. */
	suspicionMaxTimeoutMult: number;
	/** Independent confirmations that shrink a suspicion to its minimum (Lifeguard's K). */
	suspicionConfirmations: number;
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
	/** Packets stamped further than this from our wall clock are refused (bounds replays a window forgot). */
	maxClockSkewMs: number;
}

export function lanConfig(): MembershipConfig {
	// Tuned in the 10-node simulation (tests/agent/membership/detection.test.ts): kill -> every
	// survivor marks it failed in 1.6 s median, 2.8 s worst over 72 kills, and no false failure in
	// 30 minutes with 10% loss and a node 150 ms slow each way. The worst case is the wait for the
	// first probe of the dead node (9 shuffled round robins: up to ~4 intervals); then one interval
	// of direct + indirect probing, then the suspicion minimum of 2 * log10(n+1) intervals (0.83 s
	// at n = 10), reached once 3 others confirmed (they re-probe a suspect at once). A healthy
	// node that is falsely suspected is not confirmed, so it has up to 6x that to refute.
	return {
		probeIntervalMs: 400,
		probeTimeoutMs: 200,
		indirectChecks: 3,
		suspicionMult: 2,
		suspicionMinMs: 0,
		suspicionMaxTimeoutMult: 6,
		suspicionConfirmations: 3,
		retransmitMult: 4,
		pushPullIntervalMs: 30_000,
		awarenessMax: 8,
		maxMetaBytes: 1024,
		maxPacketBytes: 60_000,
		maxClockSkewMs: 120_000,
	};
}

/** Lossy, slow edge links: slower probes, longer suspicion, more retransmits. */
export function wanConfig(): MembershipConfig {
	return {
		...lanConfig(),
		// The indirect window (interval - timeout) is two round trips through a relay: it must be
		// at least the direct timeout (one round trip).
		probeIntervalMs: 3000,
		probeTimeoutMs: 1200,
		suspicionMult: 4,
		retransmitMult: 5,
		pushPullIntervalMs: 60_000,
	};
}

export function validateConfig(c: MembershipConfig): MembershipConfig {
	for (const [k, v] of Object.entries(c)) {
		if (typeof v !== "number" || !Number.isFinite(v) || v < 0)
			throw new BadConfigError(`${k} must be a non-negative number, got ${v}`);
	}
	if (c.probeTimeoutMs <= 0 || c.probeTimeoutMs * 2 > c.probeIntervalMs)
		throw new BadConfigError(
			"probeTimeoutMs must be positive and at most half of probeIntervalMs (the indirect probe window, interval - timeout, covers two round trips)",
		);
	if (c.maxClockSkewMs <= 0) throw new BadConfigError("maxClockSkewMs must be positive");
	if (c.indirectChecks < 1 || c.suspicionMult < 1 || c.retransmitMult < 1 || c.awarenessMax < 1) {
		throw new BadConfigError("indirectChecks, suspicionMult, retransmitMult and awarenessMax must be at least 1");
	}
	return c;
}
