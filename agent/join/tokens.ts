// Join tokens: TSWARM-1-<cluster key fingerprint>-<secret>. The fingerprint lets a joiner check
// it reached the right cluster before revealing anything; the secret proves it may join. The
// secret never crosses the wire (the joiner sends an HMAC keyed by hashSecret(secret)); the
// managers keep the secrets themselves, because they print the tokens again (`join-token`): sealed
// in the store's cluster record beside the signing key (agent/manager/joinkeys.ts).
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { InvalidTokenError } from "../errors.ts";

const B32 = "abcdefghijklmnopqrstuvwxyz234567";

export function base32(buf: Uint8Array): string {
	let bits = 0;
	let value = 0;
	let out = "";
	for (const byte of buf) {
		value = (value << 8) | byte;
		bits += 8;
		while (bits >= 5) {
			out += B32[(value >>> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0) out += B32[(value << (5 - bits)) & 31];
	return out;
}

/** 25 base32 characters of sha256 over the cluster's public key (125 bits). */
export function fingerprint(clusterPublicKey: Uint8Array): string {
	return base32(createHash("sha256").update(clusterPublicKey).digest()).slice(0, 25);
}

export type Role = "manager" | "worker";

export interface Token {
	fingerprint: string;
	secret: string;
}

export function newSecret(): string {
	return base32(randomBytes(20));
}

export function formatToken(fp: string, secret: string): string {
	return `TSWARM-1-${fp}-${secret}`;
}

export function parseToken(token: string): Token {
	const m = /^TSWARM-(\d+)-([a-z2-7]{25})-([a-z2-7]{32})$/.exec(token.trim());
	if (!m) throw new InvalidTokenError("expected TSWARM-1-<25-char fingerprint>-<32-char secret>");
	if (m[1] !== "1") throw new InvalidTokenError(`token version ${m[1]} is not supported`);
	return { fingerprint: m[2]!, secret: m[3]! };
}

export const hashSecret = (secret: string) =>
	createHash("sha256").update(`tsswarm-join-secret:${secret}`).digest("hex");

export function sameHash(a: string, b: string): boolean {
	const x = Buffer.from(a, "hex");
	const y = Buffer.from(b, "hex");
	return x.length === y.length && timingSafeEqual(x, y);
}
