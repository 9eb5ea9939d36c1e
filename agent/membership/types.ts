// Members, their metadata, and the state updates the protocol gossips.

export type MemberState = "alive" | "suspect" | "dead" | "left";

export interface MemberMeta {
	addresses?: string[];
	platform?: { os: string; architecture: string; variant?: string };
	labels?: Record<string, string>;
	resources?: { cpus: number; memoryBytes: number };
	role?: "manager" | "worker";
	version?: string;
}

export interface Member {
	id: string;
	/** Where its membership endpoint listens (host:port for UDP). */
	addr: string;
	incarnation: number;
	state: MemberState;
	meta: MemberMeta;
	/** Local time the state last changed. */
	since: number;
}

/** A gossiped claim about one member. */
export interface Update {
	id: string;
	addr: string;
	inc: number;
	state: MemberState;
	meta?: MemberMeta;
	/** Who claims it (for suspicion confirmations). */
	by: string;
	/**
	 * The member's own Ed25519 signature (statements.ts) over its alive (or, for left, left)
	 * statement at `inc` with this `addr` and `meta`. Required for alive and left; on suspect and
	 * dead it proves the incarnation, address and metadata the claim is about.
	 */
	sig?: Uint8Array;
	/**
	 * The claimer's (`by`'s) own signature over a suspect or dead claim (statements.ts
	 * `claimBytes`): required on both, so a confirmation counts only in the name of the member that
	 * signed it, whoever forwards it.
	 */
	csig?: Uint8Array;
}

export interface MembershipEvents {
	join: [Member];
	update: [Member];
	suspect: [Member];
	alive: [Member];
	fail: [Member];
	leave: [Member];
	refused: [{ from: string; error: Error }];
}
