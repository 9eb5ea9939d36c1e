// A member's statements about itself (alive at incarnation N with its address and metadata, or
// left) and its claims about others (suspect, dead) are signed with its node key and verified by
// every receiver: a peer holding the cluster key can suspect others in its own name only, never
// forge another's incarnation, address, metadata, leave or word.
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import { peerIdFromPrivateKey, peerIdFromString } from "@libp2p/peer-id";
import { Packr } from "msgpackr";
import { BadConfigError } from "./errors.ts";
import type { MemberMeta } from "./types.ts";

/** How statements are signed and checked: Ed25519 node keys in the agent, something cheaper in sims. */
export interface StatementCrypto {
	/** This member's signature over a statement. */
	sign(data: Uint8Array): Uint8Array;
	/** Whether sig is member id's signature over data (false for anything unverifiable). */
	verify(id: string, data: Uint8Array, sig: Uint8Array): boolean;
}

const DOMAIN = "tsswarm/membership/statement/1";
// A packer of its own, so the bytes signed do not depend on shared packer state.
const packr = new Packr({ useRecords: false });

/** The bytes a statement's signature covers; a receiver rebuilds them from the update it got. */
export function statementBytes(
	id: string,
	state: "alive" | "left",
	inc: number,
	addr: string,
	meta: MemberMeta | undefined,
): Uint8Array {
	return packr.pack([DOMAIN, id, state, inc, addr, meta ?? {}]);
}

const CLAIM_DOMAIN = "tsswarm/membership/claim/1";

/**
 * The bytes a claim's signature (`csig`, by the claimer `by`) covers: "by suspects (or, after its
 * own suspicion timeout, holds dead) member id at incarnation inc".
 */
export function claimBytes(by: string, id: string, state: "suspect" | "dead", inc: number): Uint8Array {
	return packr.pack([CLAIM_DOMAIN, by, id, state, inc]);
}

const b64u = (x: Uint8Array) => Buffer.from(x).toString("base64url");
const MAX_KEYS = 4096;

/** Real signatures: the node's libp2p Ed25519 key signs; a peer id embeds the key that verifies it. */
export function ed25519Statements(nodeKey: Ed25519PrivateKey, id: string): StatementCrypto {
	if (nodeKey.type !== "Ed25519") throw new BadConfigError(`nodeKey must be an Ed25519 key, got ${nodeKey.type}`);
	const own = peerIdFromPrivateKey(nodeKey).toString();
	if (own !== id) throw new BadConfigError(`membership id ${id} is not the peer id of nodeKey (${own})`);
	const priv = createPrivateKey({
		key: { kty: "OKP", crv: "Ed25519", d: b64u(nodeKey.raw.subarray(0, 32)), x: b64u(nodeKey.publicKey.raw) },
		format: "jwk",
	});
	// Public keys by member id (importing one costs more than a verify); null: id embeds no Ed25519 key.
	const keys = new Map<string, KeyObject | null>();
	const publicKey = (member: string): KeyObject | null => {
		let k = keys.get(member);
		if (k !== undefined) return k;
		try {
			const pub = peerIdFromString(member).publicKey;
			k =
				pub?.type === "Ed25519"
					? createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64u(pub.raw) }, format: "jwk" })
					: null;
		} catch {
			k = null;
		}
		if (keys.size >= MAX_KEYS) keys.delete(keys.keys().next().value!);
		keys.set(member, k);
		return k;
	};
	return {
		sign: (data) => sign(null, data, priv),
		verify(member, data, sig) {
			const k = publicKey(member);
			if (!k || sig.length !== 64) return false;
			try {
				return verify(null, data, k, sig);
			} catch {
				return false;
			}
		},
	};
}

/**
 * Statements already verified, so a claim heard again (piggybacked, forwarded, in a full state)
 * costs a map lookup, not a verify: keyed by signature, holding the exact bytes it covered (the
 * same signature beside another address or metadata is not a hit).
 */
export class VerifiedStatements {
	private readonly seen = new Map<string, string>();
	private readonly max: number;

	constructor(max = 8192) {
		this.max = max;
	}

	has(sig: Uint8Array, data: Uint8Array): boolean {
		return this.seen.get(Buffer.from(sig).toString("latin1")) === Buffer.from(data).toString("latin1");
	}

	add(sig: Uint8Array, data: Uint8Array): void {
		if (this.seen.size >= this.max) this.seen.delete(this.seen.keys().next().value!);
		this.seen.set(Buffer.from(sig).toString("latin1"), Buffer.from(data).toString("latin1"));
	}
}
