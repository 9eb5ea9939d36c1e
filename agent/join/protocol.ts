// /tsswarm/join/1. The joiner first makes the server prove it holds the cluster key named by the
// token's fingerprint (a signature over a fresh nonce and both peer ids); only then does it send
// an HMAC of the secret bound to a server nonce and both peer ids — never the secret itself, and
// never replayable. Every message (hello costs a signature and a session entry, join an HMAC
// check) is rate-limited per peer and, since peer ids cost nothing to mint, by one bucket over all
// peers; sessions expire and both tables are bounded. Each refusal is answered
// {t: "denied", code, reason} and logged by the host with the peer and the code.
import { createHmac, randomBytes } from "node:crypto";
import { publicKeyFromRaw } from "@libp2p/crypto/keys";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import {
	BadMessageError,
	ClusterSignatureError,
	InvalidJoinProofError,
	InvalidTokenError,
	JoinDeniedError,
	JoinRateLimitedError,
	MalformedJoinReplyError,
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
	/**
	 * To a manager only: the cluster secret every manager holds (it opens the store's sealed join
	 * keys and secrets). Sent after the proof checked out, inside Noise.
	 */
	clusterSecret?: Uint8Array;
}

export interface JoinServerState {
	clusterId: string;
	/** The signing key (a getter may read it from the store; throwing an error with a `code` denies). */
	clusterKey: Ed25519PrivateKey;
	/** Hashes of the current manager and worker secrets (may throw like clusterKey). */
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

/** One token bucket: `burst` tokens, refilled at one per `everyMs`. */
export class TokenBucket {
	readonly burst: number;
	readonly everyMs: number;
	private tokens: number;
	private at: number;
	constructor(burst: number, everyMs: number, now = Date.now()) {
		this.burst = burst;
		this.everyMs = everyMs;
		this.tokens = burst;
		this.at = now;
	}
	/** Tokens available at `now` (fractional while refilling). */
	available(now = Date.now()): number {
		return Math.min(this.burst, this.tokens + (now - this.at) / this.everyMs);
	}
	take(now = Date.now()): boolean {
		this.tokens = this.available(now);
		this.at = now;
		if (this.tokens < 1) return false;
		this.tokens -= 1;
		return true;
	}
}

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
	o: {
		limiter?: RateLimiter;
		/** Over all peers together (default: 100 at once, then 20 a second). */
		global?: TokenBucket;
		sessions?: Sessions;
		onSecretSeen?: (s: unknown) => void;
	} = {},
): Promise<void> {
	const limiter = o.limiter ?? new RateLimiter();
	const global = o.global ?? new TokenBucket(100, 50);
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
			// Per peer first: a peer over its own limit spends nothing of everyone's budget.
			if (!limiter.take(ctx.peer)) return deny(new RateLimitedError(ctx.peer));
			if (!global.take()) return deny(new JoinRateLimitedError(global.burst, global.everyMs));
			if (m?.t === "hello" && m.nonce instanceof Uint8Array && m.nonce.length === 32) {
				let key: Ed25519PrivateKey;
				try {
					key = state.clusterKey;
				} catch (err) {
					return deny(withCode(err));
				}
				const serverNonce = randomBytes(32);
				sessions.put(ctx.peer, serverNonce);
				const sig = await key.sign(transcript("tsswarm-join-hello-1", m.nonce, host.peerId, ctx.peer));
				ctx.send({ t: "challenge", clusterPub: key.publicKey.raw, sig, nonce: serverNonce });
				return;
			}
			if (m?.t === "join" && m.proof instanceof Uint8Array) {
				const nonce = sessions.take(ctx.peer); // one proof per challenge: no replay
				if (!nonce) return deny(new NoChallengeError(ctx.peer));
				let hashes: { manager: string; worker: string };
				try {
					hashes = state.secretHashes();
				} catch (err) {
					return deny(withCode(err));
				}
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
					return deny(withCode(err));
				}
				ctx.send({ t: "welcome", ...grant });
				return;
			}
			deny(new BadMessageError(JOIN_PROTOCOL, "expected hello or join"));
		},
		{ public: true },
	);
}

const withCode = (err: unknown): Error & { code: string } => {
	const e = err as Error & { code?: string };
	return Object.assign(e, { code: e.code ?? "ERR_JOIN" });
};

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
			const ch = await io.next();
			if (isDenied(ch)) throw denied(ch);
			const c = checkChallenge(ch);
			if (typeof c === "string") throw new MalformedJoinReplyError(io.peer, "challenge", c);
			const got = fingerprint(c.clusterPub);
			if (got !== t.fingerprint) throw new WrongClusterError(t.fingerprint, got);
			let ok = false;
			try {
				ok = await publicKeyFromRaw(c.clusterPub).verify(
					transcript("tsswarm-join-hello-1", nonce, io.peer, host.peerId),
					c.sig,
				);
			} catch {}
			if (!ok) throw new ClusterSignatureError(io.peer, got);
			io.send({ t: "join", proof: proofOf(t.secret, c.nonce, host.peerId, io.peer), meta });
			const r = await io.next();
			if (isDenied(r)) throw denied(r);
			const g = checkWelcome(r);
			if (typeof g === "string") throw new MalformedJoinReplyError(io.peer, "welcome", g);
			return g;
		},
		{ ...o, stranger: true },
	);
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const bytes = (v: unknown, n?: number): v is Uint8Array =>
	v instanceof Uint8Array && (n === undefined || v.length === n);

const isDenied = (v: unknown): v is Record<string, unknown> => isMap(v) && v.t === "denied";

const denied = (d: Record<string, unknown>) =>
	new JoinDeniedError(
		typeof d.reason === "string" ? d.reason.slice(0, 500) : "no reason given",
		typeof d.code === "string" ? d.code.slice(0, 64) : undefined,
	);

/** The challenge's fields, or what is wrong with it. */
function checkChallenge(v: unknown): { clusterPub: Uint8Array; sig: Uint8Array; nonce: Uint8Array } | string {
	if (!isMap(v)) return `expected a map, got ${describe(v)}`;
	if (v.t !== "challenge") return `expected t "challenge", got ${describe(v.t)}`;
	if (!bytes(v.clusterPub, 32)) return "clusterPub must be 32 bytes (an Ed25519 public key)";
	if (!bytes(v.sig, 64)) return "sig must be 64 bytes (an Ed25519 signature)";
	if (!bytes(v.nonce, 32)) return "nonce must be 32 bytes";
	return { clusterPub: v.clusterPub, sig: v.sig, nonce: v.nonce };
}

const MAX_MEMBERS = 10_000;

/** The grant in a welcome, checked field by field, or what is wrong with it. */
function checkWelcome(v: unknown): JoinGrant | string {
	if (!isMap(v)) return `expected a map, got ${describe(v)}`;
	if (v.t !== "welcome") return `expected t "welcome", got ${describe(v.t)}`;
	if (typeof v.clusterId !== "string" || v.clusterId.length === 0 || v.clusterId.length > 128)
		return `clusterId must be a string of 1 to 128 characters, got ${describe(v.clusterId)}`;
	if (v.role !== "manager" && v.role !== "worker") return `role must be manager or worker, got ${describe(v.role)}`;
	if (!bytes(v.membershipKey, 32)) return "membershipKey must be 32 bytes";
	if (!Array.isArray(v.members) || v.members.length > MAX_MEMBERS)
		return `members must be a list of at most ${MAX_MEMBERS}, got ${describe(v.members)}`;
	const members: JoinGrant["members"] = [];
	for (const [i, m] of v.members.entries()) {
		if (
			!isMap(m) ||
			typeof m.id !== "string" ||
			typeof m.addr !== "string" ||
			(m.role !== "manager" && m.role !== "worker") ||
			m.id.length > 256 ||
			m.addr.length > 256
		)
			return `members[${i}] must be {id: string, role: manager or worker, addr: string}, got ${describe(m)}`;
		members.push({ id: m.id, role: m.role, addr: m.addr });
	}
	if (v.clusterSecret !== undefined && (v.role !== "manager" || !bytes(v.clusterSecret, 32)))
		return "clusterSecret must be 32 bytes, and only in a manager's grant";
	return {
		clusterId: v.clusterId,
		role: v.role,
		membershipKey: v.membershipKey,
		members,
		...(v.clusterSecret instanceof Uint8Array ? { clusterSecret: new Uint8Array(v.clusterSecret) } : {}),
	};
}

const describe = (v: unknown): string =>
	v === null
		? "null"
		: Array.isArray(v)
			? `a list of ${v.length}`
			: v instanceof Uint8Array
				? `${v.length} bytes`
				: typeof v === "string"
					? JSON.stringify(v.slice(0, 40))
					: typeof v === "object"
						? "a map"
						: typeof v;

export { InvalidTokenError };
