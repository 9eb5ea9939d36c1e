// /tsswarm/join/1. The joiner first makes the server prove it holds the cluster key named by the
// token's fingerprint (a signature over a fresh nonce and both peer ids); only then does it send
// an HMAC of the secret bound to a server nonce and both peer ids — never the secret itself, and
// never replayable. Attempts are rate-limited per peer.
import { createHmac, randomBytes } from "node:crypto";
import { publicKeyFromRaw } from "@libp2p/crypto/keys";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import { InvalidTokenError, JoinDeniedError, RateLimitedError, WrongClusterError } from "../errors.ts";
import type { Host } from "../host/index.ts";
import { fingerprint, hashSecret, parseToken, type Role, sameHash } from "./tokens.ts";

export const JOIN_PROTOCOL = "/tsswarm/join/1";

export interface JoinGrant {
	clusterId: string;
	role: Role;
	/** Secret that authenticates membership (SWIM) packets; travels only inside Noise. */
	membershipKey: Uint8Array;
	/** Members to join through: id + membership address. */
	members: Array<{ id: string; addr: string }>;
}

export interface JoinServerState {
	clusterId: string;
	clusterKey: Ed25519PrivateKey;
	/** Hashes of the current manager and worker secrets. */
	secretHashes(): { manager: string; worker: string };
	grant(peer: string, role: Role, meta: Record<string, unknown>): JoinGrant;
}

const transcript = (...parts: Array<string | Uint8Array>) =>
	Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(`${p}\0`) : Buffer.from(p))));

const proofOf = (secret: string, nonce: Uint8Array, joiner: string, server: string) =>
	createHmac("sha256", hashSecret(secret))
		.update(transcript("tsswarm-join-proof-1", nonce, joiner, server))
		.digest();

/** Token bucket per peer: `burst` attempts, refilled at one per `everyMs`. */
export class RateLimiter {
	private readonly buckets = new Map<string, { tokens: number; at: number }>();
	private readonly burst: number;
	private readonly everyMs: number;
	constructor(burst = 5, everyMs = 12_000) {
		this.burst = burst;
		this.everyMs = everyMs;
	}
	take(key: string, now = Date.now()): boolean {
		const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
		b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / this.everyMs);
		b.at = now;
		this.buckets.set(key, b);
		if (b.tokens < 1) return false;
		b.tokens -= 1;
		return true;
	}
}

export async function serveJoin(
	host: Host,
	state: JoinServerState,
	o: { limiter?: RateLimiter; onSecretSeen?: (s: unknown) => void } = {},
): Promise<void> {
	const limiter = o.limiter ?? new RateLimiter();
	const sessions = new Map<string, Uint8Array>();
	await host.handle(
		JOIN_PROTOCOL,
		async (msg, ctx) => {
			const m = msg as {
				t?: string;
				nonce?: Uint8Array;
				proof?: Uint8Array;
				role?: Role;
				meta?: Record<string, unknown>;
			};
			o.onSecretSeen?.(msg);
			if (m.t === "hello" && m.nonce instanceof Uint8Array && m.nonce.length === 32) {
				const serverNonce = randomBytes(32);
				sessions.set(ctx.peer, serverNonce);
				const sig = await state.clusterKey.sign(transcript("tsswarm-join-hello-1", m.nonce, host.peerId, ctx.peer));
				ctx.send({ t: "challenge", clusterPub: state.clusterKey.publicKey.raw, sig, nonce: serverNonce });
				return;
			}
			if (m.t === "join" && m.proof instanceof Uint8Array) {
				const nonce = sessions.get(ctx.peer);
				sessions.delete(ctx.peer); // one proof per challenge: no replay
				if (!limiter.take(ctx.peer)) {
					ctx.send({ t: "denied", reason: new RateLimitedError(ctx.peer).message });
					return ctx.close();
				}
				if (!nonce) {
					ctx.send({ t: "denied", reason: "no challenge outstanding for this peer" });
					return ctx.close();
				}
				const hashes = state.secretHashes();
				let role: Role | undefined;
				for (const r of ["manager", "worker"] as const) {
					const want = createHmac("sha256", hashes[r])
						.update(transcript("tsswarm-join-proof-1", nonce, ctx.peer, host.peerId))
						.digest();
					if (want.length === m.proof.length && sameHash(want.toString("hex"), Buffer.from(m.proof).toString("hex")))
						role = r;
				}
				if (!role) {
					ctx.send({ t: "denied", reason: "invalid or rotated token" });
					return ctx.close();
				}
				ctx.send({ t: "welcome", ...state.grant(ctx.peer, role, m.meta ?? {}) });
				return;
			}
			ctx.send({ t: "denied", reason: "unexpected message" });
			ctx.close();
		},
		{ public: true },
	);
}

/** Join the cluster at addr with token. Throws WrongClusterError before sending anything secret. */
export async function requestJoin(
	host: Host,
	addr: string,
	token: string,
	meta: Record<string, unknown>,
	o: { timeoutMs?: number } = {},
): Promise<JoinGrant> {
	const t = parseToken(token);
	return host.session(
		addr,
		JOIN_PROTOCOL,
		async (io) => {
			const nonce = randomBytes(32);
			io.send({ t: "hello", nonce });
			const ch = (await io.next()) as { t?: string; clusterPub?: Uint8Array; sig?: Uint8Array; nonce?: Uint8Array };
			if (
				ch?.t !== "challenge" ||
				!(ch.clusterPub instanceof Uint8Array) ||
				!(ch.sig instanceof Uint8Array) ||
				!(ch.nonce instanceof Uint8Array)
			) {
				throw new JoinDeniedError("the server did not answer the join handshake");
			}
			const got = fingerprint(ch.clusterPub);
			if (got !== t.fingerprint) throw new WrongClusterError(t.fingerprint, got);
			let ok = false;
			try {
				ok = await publicKeyFromRaw(ch.clusterPub).verify(
					transcript("tsswarm-join-hello-1", nonce, io.peer, host.peerId),
					ch.sig,
				);
			} catch {}
			if (!ok) throw new WrongClusterError(t.fingerprint, `${got} (signature invalid)`);
			io.send({ t: "join", proof: proofOf(t.secret, ch.nonce, host.peerId, io.peer), meta });
			const r = (await io.next()) as { t?: string; reason?: string } & Partial<JoinGrant>;
			if (r?.t !== "welcome") throw new JoinDeniedError(r?.reason ?? "no answer");
			if (!r.clusterId || !r.role || !(r.membershipKey instanceof Uint8Array) || !Array.isArray(r.members)) {
				throw new JoinDeniedError("malformed welcome");
			}
			return { clusterId: r.clusterId, role: r.role, membershipKey: r.membershipKey, members: r.members };
		},
		o,
	);
}

export { InvalidTokenError };
