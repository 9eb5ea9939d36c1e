// /tsswarm/join/1. The joiner first makes the server prove it holds the cluster key named by the
// token's fingerprint (a signature over a fresh nonce and both peer ids); only then does it send
// an HMAC of the secret bound to a server nonce and both peer ids — never the secret itself, and
// never replayable. Every message (hello costs a signature and a session entry, join an HMAC
// check) is rate-limited per peer; sessions expire and both tables are bounded. Each refusal is
// answered {t: "denied", code, reason} and logged by the host with the peer and the code.
import { createHmac, randomBytes } from "node:crypto";
import { publicKeyFromRaw } from "@libp2p/crypto/keys";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import {
	BadMessageError,
	InvalidJoinProofError,
	InvalidTokenError,
	JoinDeniedError,
	NoChallengeError,
	RateLimitedError,
	WrongClusterError,
} from "../errors.ts";
import type { Host } from "../host/index.ts";
import { fingerprint, hashSecret, parseToken, type Role, sameHash } from "./tokens.ts";

export const JOIN_PROTOCOL = "/tsswarm/join/1";

export interface JoinGrant {
	clusterId: string;
	role: Role;
	/** Secret that authenticates membership (SWIM) packets; travels only inside Noise. */
	membershipKey: Uint8Array;
	/** The cluster's nodes (the joiner's first directory): id, role, ip:port. */
	members: Array<{ id: string; role: Role; addr: string }>;
}

export interface JoinServerState {
	clusterId: string;
	clusterKey: Ed25519PrivateKey;
	/** Hashes of the current manager and worker secrets. */
	secretHashes(): { manager: string; worker: string };
	/** Admit the peer (may refuse by throwing an error with a `code`, e.g. a bad self-description). */
	grant(peer: string, role: Role, meta: Record<string, unknown>): Promise<JoinGrant>;
}

const transcript = (...parts: Array<string | Uint8Array>) =>
	Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(`${p}\0`) : Buffer.from(p))));

const proofOf = (secret: string, nonce: Uint8Array, joiner: string, server: string) =>
	createHmac("sha256", hashSecret(secret))
		.update(transcript("tsswarm-join-proof-1", nonce, joiner, server))
		.digest();

/** Token bucket per peer: `burst` messages, refilled at one per `everyMs`; at most `maxKeys` peers tracked. */
export class RateLimiter {
	private readonly buckets = new Map<string, { tokens: number; at: number }>();
	private readonly burst: number;
	private readonly everyMs: number;
	private readonly maxKeys: number;
	constructor(burst = 10, everyMs = 6_000, maxKeys = 4096) {
		this.burst = burst;
		this.everyMs = everyMs;
		this.maxKeys = maxKeys;
	}
	get size(): number {
		return this.buckets.size;
	}
	take(key: string, now = Date.now()): boolean {
		let b = this.buckets.get(key);
		if (!b) {
			if (this.buckets.size >= this.maxKeys) this.evict(now);
			b = { tokens: this.burst, at: now };
		}
		b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / this.everyMs);
		b.at = now;
		// Re-insert: the map's order is least recently used first.
		this.buckets.delete(key);
		this.buckets.set(key, b);
		if (b.tokens < 1) return false;
		b.tokens -= 1;
		return true;
	}
	/** Drop buckets that are full again (they carry no state), else the least recently used. */
	private evict(now: number): void {
		for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) / this.everyMs >= this.burst) this.buckets.delete(k);
		while (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
	}
}

/** Outstanding challenges, one per peer, for ttlMs; at most max of them (oldest dropped). */
export class Sessions {
	private readonly m = new Map<string, { nonce: Uint8Array; at: number }>();
	private readonly ttlMs: number;
	private readonly max: number;
	constructor(ttlMs = 30_000, max = 1024) {
		this.ttlMs = ttlMs;
		this.max = max;
	}
	get size(): number {
		return this.m.size;
	}
	put(peer: string, nonce: Uint8Array, now = Date.now()): void {
		this.m.delete(peer);
		for (const [k, v] of this.m) {
			if (now - v.at < this.ttlMs && this.m.size < this.max) break;
			this.m.delete(k); // oldest first: expired, or over the bound
		}
		this.m.set(peer, { nonce, at: now });
	}
	/** The peer's challenge, consumed: one proof per challenge. */
	take(peer: string, now = Date.now()): Uint8Array | undefined {
		const s = this.m.get(peer);
		this.m.delete(peer);
		return s && now - s.at < this.ttlMs ? s.nonce : undefined;
	}
}

export async function serveJoin(
	host: Host,
	state: JoinServerState,
	o: { limiter?: RateLimiter; sessions?: Sessions; onSecretSeen?: (s: unknown) => void } = {},
): Promise<void> {
	const limiter = o.limiter ?? new RateLimiter();
	const sessions = o.sessions ?? new Sessions();
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
			const deny = (err: Error & { code: string }) => {
				host.refused(ctx.peer, JOIN_PROTOCOL, err);
				ctx.send({ t: "denied", code: err.code, reason: err.message });
				ctx.close();
			};
			if (!limiter.take(ctx.peer)) return deny(new RateLimitedError(ctx.peer));
			if (m?.t === "hello" && m.nonce instanceof Uint8Array && m.nonce.length === 32) {
				const serverNonce = randomBytes(32);
				sessions.put(ctx.peer, serverNonce);
				const sig = await state.clusterKey.sign(transcript("tsswarm-join-hello-1", m.nonce, host.peerId, ctx.peer));
				ctx.send({ t: "challenge", clusterPub: state.clusterKey.publicKey.raw, sig, nonce: serverNonce });
				return;
			}
			if (m?.t === "join" && m.proof instanceof Uint8Array) {
				const nonce = sessions.take(ctx.peer); // one proof per challenge: no replay
				if (!nonce) return deny(new NoChallengeError(ctx.peer));
				const hashes = state.secretHashes();
				let role: Role | undefined;
				for (const r of ["manager", "worker"] as const) {
					const want = createHmac("sha256", hashes[r])
						.update(transcript("tsswarm-join-proof-1", nonce, ctx.peer, host.peerId))
						.digest();
					if (want.length === m.proof.length && sameHash(want.toString("hex"), Buffer.from(m.proof).toString("hex")))
						role = r;
				}
				if (!role) return deny(new InvalidJoinProofError(ctx.peer));
				let grant: JoinGrant;
				try {
					grant = await state.grant(ctx.peer, role, m.meta ?? {});
				} catch (err) {
					const e = err as Error & { code?: string };
					return deny(Object.assign(e, { code: e.code ?? "ERR_JOIN" }));
				}
				ctx.send({ t: "welcome", ...grant });
				return;
			}
			deny(new BadMessageError(JOIN_PROTOCOL, "expected hello or join"));
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
			if (ch?.t === "denied") {
				const d = ch as { reason?: string; code?: string };
				throw new JoinDeniedError(d.reason ?? "no reason given", d.code);
			}
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
			const r = (await io.next()) as { t?: string; reason?: string; code?: string } & Partial<JoinGrant>;
			if (r?.t !== "welcome") throw new JoinDeniedError(r?.reason ?? "no answer", r?.code);
			if (!r.clusterId || !r.role || !(r.membershipKey instanceof Uint8Array) || !Array.isArray(r.members)) {
				throw new JoinDeniedError("malformed welcome");
			}
			return { clusterId: r.clusterId, role: r.role, membershipKey: r.membershipKey, members: r.members };
		},
		{ ...o, stranger: true },
	);
}

export { InvalidTokenError };
