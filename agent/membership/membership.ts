// SWIM membership with the Lifeguard refinements (after hashicorp/memberlist):
// - each member probes one other per interval (shuffled round robin), then asks k others to
//   probe it indirectly; intermediaries answer with a nack when they got no ack (Lifeguard), early
//   enough (a fraction of the requester's window, which the request carries) to arrive in time;
// - a member that misses its probes is suspected; the suspicion timeout starts long and shrinks
//   as independent members confirm it (Lifeguard) — a member's own failed probe of a member it
//   already suspects is such a confirmation — and a suspected member refutes by raising its
//   incarnation; when this member's own timeout ends it declares it failed (another's "dead" is
//   one more confirmation, never a failure on its word);
// - this node's own health (missed nacks, refutations) scales its probe timing (Lifeguard's
//   local health awareness), so a slow node does not accuse healthy ones;
// - state changes are piggybacked on probes a bounded number of times; suspicions, their
//   confirmations, failures, leaves and refutations are also pushed at once to `indirectChecks`
//   random members (each member forwards a claim once, when it changes its view), like
//   memberlist's gossip interval but without idle traffic; and members exchange full state
//   periodically (push-pull) and at join.
// Membership only reports liveness: a member's statements about itself (alive at an incarnation
// with its address and metadata, left) and its claims about others (suspect, dead: confirmations)
// are signed by its node key and verified before they are applied or passed on; packets carry
// freshness (boot, sequence, stamp) against replay. README.md.
import { EventEmitter } from "node:events";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import { pack } from "msgpackr";
import { decodeFrame, encodePacket, type Packet, probeTag, validateMeta } from "./codec.ts";
import { type MembershipConfig, validateConfig } from "./config.ts";
import {
	BadConfigError,
	BadSignatureError,
	MetadataTooLargeError,
	PacketTimeError,
	ReplayedPacketError,
	StaleIncarnationError,
	UnknownClaimerError,
} from "./errors.ts";
import { FreshnessSource, ReplayWindows, WINDOW } from "./freshness.ts";
import {
	claimBytes,
	ed25519Statements,
	type StatementCrypto,
	statementBytes,
	VerifiedStatements,
} from "./statements.ts";
import { type Clock, type PacketTransport, realClock, type Timer } from "./transport.ts";
import type { Member, MemberMeta, MembershipEvents, Update } from "./types.ts";

export interface MembershipOptions {
	id: string;
	transport: PacketTransport;
	/** The cluster secret that authenticates every packet. */
	clusterKey: Uint8Array;
	config: MembershipConfig;
	meta?: MemberMeta;
	clock?: Clock;
	random?: () => number;
	/** First incarnation (default 1). A restarting member may pass a persisted or clock-derived one. */
	incarnation?: number;
	/**
	 * This node's libp2p Ed25519 key (agent/host/key.ts): it signs this member's statements about
	 * itself, and `id` must be its peer id. Required unless `statements` is given.
	 */
	nodeKey?: Ed25519PrivateKey;
	/** Other signatures, for simulations whose ids are not peer ids; the agent passes `nodeKey`. */
	statements?: StatementCrypto;
	/** Wall clock (ms) for packet stamps, compared across members (default Date.now). */
	wallClock?: () => number;
	logger?: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}

interface Suspicion {
	timer: Timer;
	start: number;
	confirmations: Set<string>;
	min: number;
	max: number;
}

const MAX_PIGGYBACK = 12;
/** A relay nacks at this fraction of the requester's indirect window, so the nack arrives in time. */
const NACK_AT = 0.8;
const STALE_LOG_MS = 10_000;
/** Full-state chunks fit one Ethernet frame (1500 - IP/UDP headers - our header). */
const SYNC_CHUNK_BYTES = 1400;
/** Rate limit of the warning logged per kind of refusal and sender (floods must not flood the log). */
const REFUSAL_LOG_MS = 10_000;

export class Membership extends EventEmitter<MembershipEvents> {
	readonly id: string;
	private readonly tr: PacketTransport;
	private readonly key: Uint8Array;
	private readonly cfg: MembershipConfig;
	private readonly clock: Clock;
	private readonly random: () => number;
	private readonly log: MembershipOptions["logger"];
	private readonly members = new Map<string, Member>();
	private self!: Member;
	private meta: MemberMeta;
	private readonly firstIncarnation: number;
	private probeOrder: string[] = [];
	private probeIdx = 0;
	private seq = 0;
	private acks = new Map<number, (kind: "ack" | "nack") => void>();
	/** Updates still to piggyback, one per member (a newer claim replaces an older one). */
	private queue = new Map<string, { u: Update; sent: number }>();
	/** The queue again, by how often each update was sent (index = sends so far). */
	private sentBuckets: Array<Map<string, { u: Update; sent: number }>> = [new Map()];
	private suspicions = new Map<string, Suspicion>();
	private awareness = 0;
	private running = false;
	/** Cached liveCount(), -1 when a member's state changed since. */
	private liveN = -1;
	/** All members in insertion order, for cheap random picks. */
	private readonly list: Member[] = [];
	/** Every pending timer (probes, acks, push-pull, join retries), so stop() cancels them all. */
	private readonly timers = new Set<Timer>();
	/** When a stale update about a member was last logged (one line per member per 10 s). */
	private readonly staleLogged = new Map<string, number>();
	/** When a refusal of a kind from a sender was last logged. */
	private readonly refusalLogged = new Map<string, number>();
	private readonly crypto: StatementCrypto;
	/** Each member's own signature over the statement its current incarnation, address and meta come from. */
	private readonly sigs = new Map<string, Uint8Array>();
	private readonly verified = new VerifiedStatements();
	/** Our signed suspect or dead claim about each member, re-signed only when state or incarnation change. */
	private readonly ownClaims = new Map<string, { state: "suspect" | "dead"; inc: number; csig: Uint8Array }>();
	/** Our signed statement, re-signed only when incarnation or state change. */
	private selfSigned: { inc: number; state: string; meta: MemberMeta; sig: Uint8Array } | undefined;
	private readonly wall: () => number;
	private fresh: FreshnessSource;
	private readonly windows = new ReplayWindows();
	readonly stats = {
		refused: 0,
		stale: 0,
		probes: 0,
		indirect: 0,
		refutations: 0,
		nacksMissed: 0,
		gossiped: 0,
		/** Statements refused: unsigned, or not signed by the member they are about. */
		badSignatures: 0,
		/** Statements whose signature was checked (the rest were already verified, or changed nothing). */
		verified: 0,
		/** Packets dropped as replays (already seen, behind the window, or stamped outside the skew bound). */
		replayed: 0,
		/** Suspect or dead claims refused because their claimer is not a live member we know. */
		unknownClaimers: 0,
	};

	constructor(o: MembershipOptions) {
		super();
		this.id = o.id;
		this.tr = o.transport;
		this.key = o.clusterKey;
		this.cfg = validateConfig(o.config);
		this.clock = o.clock ?? realClock;
		this.random = o.random ?? Math.random;
		this.log = o.logger;
		this.meta = o.meta ?? {};
		this.firstIncarnation = o.incarnation ?? 1;
		this.checkMeta(this.meta);
		if (o.statements) this.crypto = o.statements;
		else if (o.nodeKey) this.crypto = ed25519Statements(o.nodeKey, o.id);
		else throw new BadConfigError("membership needs nodeKey (the node's Ed25519 key) to sign its statements");
		this.wall = o.wallClock ?? Date.now;
		this.fresh = new FreshnessSource(this.wall);
	}

	private checkMeta(meta: MemberMeta): void {
		const size = pack(meta).length;
		if (size > this.cfg.maxMetaBytes) throw new MetadataTooLargeError(size, this.cfg.maxMetaBytes);
		validateMeta(meta);
	}

	get bytesSent(): number {
		return this.tr.bytesSent;
	}

	/** Lifeguard's local health score (0 = healthy); probe timing is scaled by awareness + 1. */
	get health(): number {
		return this.awareness;
	}

	async start(): Promise<void> {
		// A new sender life: receivers open a new replay window for it.
		this.fresh = new FreshnessSource(this.wall);
		await this.tr.start((from, data) => this.onPacket(from, data));
		this.self = {
			id: this.id,
			addr: this.tr.addr,
			incarnation: this.firstIncarnation,
			state: "alive",
			meta: this.meta,
			since: this.clock.now(),
		};
		this.members.set(this.id, this.self);
		this.list.push(this.self);
		this.liveN = -1;
		this.running = true;
		this.scheduleProbe(this.random() * this.cfg.probeIntervalMs);
		if (this.cfg.pushPullIntervalMs > 0) this.schedulePushPull();
	}

	/** A timer stop() cancels; it forgets itself when it fires. */
	private after(ms: number, fn: () => void): Timer {
		const t = this.clock.setTimer(ms, () => {
			this.timers.delete(t);
			if (this.running) fn();
		});
		this.timers.add(t);
		return {
			cancel: () => {
				t.cancel();
				this.timers.delete(t);
			},
		};
	}

	/** Pending timers (for tests: stop() must leave none). */
	get pendingTimers(): number {
		return this.timers.size;
	}

	/** Contact seed addresses and exchange full state with them. */
	join(seeds: string[]): void {
		const others = seeds.filter((a) => a !== this.tr.addr);
		if (others.length === 0 || !this.running) return;
		for (const addr of others) this.sendState(addr, false);
		// Datagrams get lost: keep asking until someone answered (we know another live member).
		this.after(this.cfg.probeIntervalMs, () => {
			if (this.liveCount() <= 1) this.join(others);
		});
	}

	/** Members that are alive or suspected (the live view), this node included. */
	live(): Member[] {
		return [...this.members.values()].filter((m) => m.state === "alive" || m.state === "suspect");
	}

	all(): Member[] {
		return [...this.members.values()];
	}

	get(id: string): Member | undefined {
		return this.members.get(id);
	}

	/** Change this node's metadata; gossiped with a new incarnation. */
	setMeta(meta: MemberMeta): void {
		this.checkMeta(meta);
		this.meta = meta;
		this.self.meta = meta;
		this.self.incarnation++;
		this.enqueue(this.selfUpdate("alive"));
	}

	/** Graceful leave: tell others (they emit "leave", not "fail"), then stop. */
	async leave(waitMs = this.cfg.probeIntervalMs * 2): Promise<void> {
		if (!this.running) return;
		this.self.incarnation++;
		this.self.state = "left";
		this.liveN = -1;
		const u = this.selfUpdate("left");
		// Tell a few members directly; they forward it at once and gossip carries it to the rest.
		for (const m of this.pickRandom(
			this.cfg.indirectChecks + 2,
			(x) => x.id !== this.id && x.state !== "dead" && x.state !== "left",
		)) {
			this.send(m.addr, { t: "sync", from: this.id, reply: true, u: [u] });
		}
		this.enqueue(u);
		// Not this.after(): stop() must not cancel our own wait.
		await new Promise<void>((r) => this.clock.setTimer(waitMs, r));
		await this.stop();
	}

	async stop(): Promise<void> {
		if (!this.running && this.timers.size === 0 && this.suspicions.size === 0) return;
		this.running = false;
		for (const t of this.timers) t.cancel();
		this.timers.clear();
		for (const s of this.suspicions.values()) s.timer.cancel();
		this.suspicions.clear();
		this.acks.clear();
		await this.tr.stop();
	}

	// --- packets -------------------------------------------------------------------------------

	private send(addr: string, p: Packet): void {
		if (!this.running && p.t !== "sync") return;
		this.tr.send(addr, encodePacket(p, this.key, this.fresh.next()));
	}

	private piggyback(): Update[] {
		if (this.queue.size === 0) return [];
		const limit = this.cfg.retransmitMult * Math.ceil(Math.log10(this.liveCount() + 1));
		// The least-sent updates first: buckets by send count make this O(MAX_PIGGYBACK), not
		// O(queued), which matters when a partition queues news of hundreds of members.
		const pick: Array<{ u: Update; sent: number }> = [];
		for (const b of this.sentBuckets) {
			for (const q of b.values()) {
				pick.push(q);
				if (pick.length === MAX_PIGGYBACK) break;
			}
			if (pick.length === MAX_PIGGYBACK) break;
		}
		for (const q of pick) {
			this.sentBuckets[q.sent]!.delete(q.u.id);
			q.sent++;
			if (q.sent >= limit) this.queue.delete(q.u.id);
			else {
				if (!this.sentBuckets[q.sent]) this.sentBuckets[q.sent] = new Map();
				this.sentBuckets[q.sent]!.set(q.u.id, q);
			}
		}
		return pick.map((q) => q.u);
	}

	private enqueue(u: Update): void {
		const old = this.queue.get(u.id);
		if (old) this.sentBuckets[old.sent]?.delete(u.id);
		const q = { u, sent: 0 };
		this.queue.set(u.id, q);
		this.sentBuckets[0]!.set(u.id, q);
	}

	/**
	 * Push a claim at once to `indirectChecks` random live members (and to `also`), and piggyback it.
	 * Every member that changes its view because of a claim forwards it once, so news of a failure
	 * reaches everyone in a few network round trips instead of a few probe intervals.
	 */
	private spread(u: Update, also?: string, fanout = this.cfg.indirectChecks): void {
		this.enqueue(u);
		if (!this.running) return;
		const to = this.pickRandom(
			fanout,
			(m) => m.id !== this.id && m.id !== u.id && (m.state === "alive" || m.state === "suspect"),
		).map((m) => m.addr);
		if (also) to.push(also);
		for (const addr of to) {
			this.stats.gossiped++;
			this.send(addr, { t: "sync", from: this.id, reply: true, u: [u] });
		}
	}

	private liveCount(): number {
		if (this.liveN < 0) {
			let n = 0;
			for (const m of this.members.values()) if (m.state === "alive" || m.state === "suspect") n++;
			this.liveN = n;
		}
		return this.liveN;
	}

	/** Our statement about ourselves (alive or left), signed. */
	private selfUpdate(state: "alive" | "left"): Update {
		const inc = this.self.incarnation;
		let s = this.selfSigned;
		if (!s || s.inc !== inc || s.state !== state || s.meta !== this.meta) {
			const sig = this.crypto.sign(statementBytes(this.id, state, inc, this.self.addr, this.meta));
			s = this.selfSigned = { inc, state, meta: this.meta, sig };
		}
		return { id: this.id, addr: this.self.addr, inc, state, meta: this.meta, by: this.id, sig: s.sig };
	}

	/**
	 * Send our full state in datagrams of about one MTU (a 1,000-member state is ~100 KB: one
	 * packet would exceed maxPacketBytes, and a fragmented one is lost with any fragment). Only the
	 * first chunk of a request asks for the peer's state in return.
	 */
	private sendState(addr: string, isReply: boolean): void {
		let chunk: Update[] = [];
		let bytes = 0;
		let first = true;
		const flush = () => {
			this.send(addr, { t: "sync", from: this.id, reply: isReply || !first, u: chunk });
			first = false;
			chunk = [];
			bytes = 0;
		};
		for (const u of this.fullState()) {
			const size =
				40 +
				u.id.length +
				u.addr.length +
				u.by.length +
				(u.meta ? pack(u.meta).length : 0) +
				(u.sig ? 66 : 0) +
				(u.csig ? 66 : 0);
			if (chunk.length > 0 && bytes + size > SYNC_CHUNK_BYTES) flush();
			chunk.push(u);
			bytes += size;
		}
		if (chunk.length > 0) flush();
	}

	/** Every member as we see it, each with the signed statement its incarnation, address and meta come from. */
	private fullState(): Update[] {
		return [...this.members.values()].map((m) => {
			if (m === this.self) return this.selfUpdate(m.state === "left" ? "left" : "alive");
			// Our view of a suspect or failed member is our claim, in our name.
			if (m.state === "suspect" || m.state === "dead") return this.ownClaim(m, m.state, true);
			return {
				id: m.id,
				addr: m.addr,
				inc: m.incarnation,
				state: m.state,
				meta: m.meta,
				by: this.id,
				sig: this.sigs.get(m.id),
			};
		});
	}

	private refuse(from: string, error: Error & { code?: string }, member?: string): void {
		this.stats.refused++;
		this.warnRefusal(from, error, member);
		this.emit("refused", { from, error });
	}

	/** Log a refusal with its sender, at most once per kind and sender per 10 s. */
	private warnRefusal(from: string, error: Error & { code?: string }, member?: string): void {
		const key = `${error.code}|${from}`;
		const now = this.clock.now();
		const last = this.refusalLogged.get(key);
		if (last !== undefined && now - last < REFUSAL_LOG_MS) return;
		if (this.refusalLogged.size >= 4096) this.refusalLogged.clear();
		this.refusalLogged.set(key, now);
		this.log?.warn({ peer: from, member, err: error.message, code: error.code }, "membership input refused");
	}

	private onPacket(from: string, data: Uint8Array): void {
		if (!this.running) return;
		let p: Packet;
		try {
			const f = decodeFrame(data, this.key, this.cfg.maxPacketBytes);
			p = f.packet;
			// Freshness after the MAC (only authenticated packets touch the windows): a stamp within
			// the skew bound, and a sequence this sender life has not used yet.
			const skew = Math.abs(this.wall() - f.fresh.ts);
			if (skew > this.cfg.maxClockSkewMs) throw new PacketTimeError(skew, this.cfg.maxClockSkewMs);
			const w = this.windows.check(f.fresh.boot, f.fresh.seq);
			if (w !== "ok")
				throw new ReplayedPacketError(
					f.fresh.seq,
					w === "seen" ? "already accepted from this sender" : `more than ${WINDOW} behind its newest packet`,
				);
		} catch (err) {
			if (err instanceof ReplayedPacketError || err instanceof PacketTimeError) {
				this.stats.replayed++;
				this.warnRefusal(from, err);
				this.emit("refused", { from, error: err });
			} else this.refuse(from, err as Error);
			return;
		}
		for (const u of p.u) this.apply(u, from);
		switch (p.t) {
			case "ping":
				if (p.to === this.id || p.to === probeTag(this.id))
					this.send(from, { t: "ack", seq: p.seq, u: this.piggyback() });
				break;
			case "ack":
			case "nack":
				this.acks.get(p.seq)?.(p.t);
				break;
			case "pingReq":
				this.relayProbe(from, p.seq, p.target, p.targetAddr, p.w);
				break;
			case "sync":
				if (!p.reply) this.sendState(from, true);
				break;
		}
	}

	// --- state changes -------------------------------------------------------------------------

	/** An update older than what we know: refused, counted, logged once per member per 10 s. */
	private stale(u: Update, cur: Member, from: string): void {
		this.stats.stale++;
		const error = new StaleIncarnationError(u.id, u.state, u.inc, cur.incarnation);
		const now = this.clock.now();
		const last = this.staleLogged.get(u.id);
		if (last === undefined || now - last >= STALE_LOG_MS) {
			this.staleLogged.set(u.id, now);
			this.log?.warn({ peer: from, member: u.id, err: error.message, code: error.code }, "member update refused");
		}
		this.emit("refused", { from, error });
	}

	private apply(u: Update, from: string): void {
		if (u.meta !== undefined) {
			const size = pack(u.meta).length;
			if (size > this.cfg.maxMetaBytes) {
				this.refuse(from, new MetadataTooLargeError(size, this.cfg.maxMetaBytes), u.id);
				return;
			}
			try {
				validateMeta(u.meta);
			} catch (err) {
				this.refuse(from, err as Error, u.id);
				return;
			}
		}
		if (u.id === this.id) {
			this.applySelf(u, from);
			return;
		}
		const cur = this.members.get(u.id);
		const now = this.clock.now();
		// Cheap refusals and no-ops first: a signature is checked only when it would change our view.
		if (cur && u.inc < cur.incarnation) {
			this.stale(u, cur, from);
			return;
		}
		switch (u.state) {
			case "alive": {
				// Equal incarnation: the news we have (or a suspicion of it) stands; a down member
				// comes back only with a higher incarnation (its refutation).
				if (cur && u.inc === cur.incarnation) return;
				if (!this.signed(u, from)) return;
				this.sigs.set(u.id, u.sig!);
				if (!cur) {
					const m: Member = {
						id: u.id,
						addr: u.addr,
						incarnation: u.inc,
						state: "alive",
						meta: u.meta ?? {},
						since: now,
					};
					this.members.set(u.id, m);
					this.list.push(m);
					this.liveN = -1;
					this.addToProbeOrder(u.id);
					this.spread(u);
					this.emit("join", m);
					return;
				}
				const was = cur.state;
				const metaChanged = JSON.stringify(cur.meta) !== JSON.stringify(u.meta ?? {});
				cur.incarnation = u.inc;
				cur.addr = u.addr;
				cur.meta = u.meta ?? {};
				this.clearSuspicion(cur.id);
				if (was !== "alive") {
					cur.state = "alive";
					this.liveN = -1;
					cur.since = now;
					if (was === "dead" || was === "left") {
						// The round robin dropped it while it was down.
						this.addToProbeOrder(cur.id);
						this.emit("join", cur);
					} else this.emit("alive", cur);
					this.spread(u);
				} else {
					if (metaChanged) this.emit("update", cur);
					this.enqueue(u);
				}
				return;
			}
			case "suspect":
			case "dead": {
				// Others' word about a member: it can make it suspect, never failed — a "dead" claim
				// (the claimer's own timeout ended) is one more confirmation of the suspicion, and this
				// member declares the failure only when its own timer ends (Lifeguard), so a lone key
				// holder cannot fail a live member before it had the suspicion timeout to refute. The
				// incarnation, address and metadata come only from the member's own signature: a claim
				// about an incarnation we have not seen counts only with the member's signature for it
				// (then first applied as its alive statement). Without, we are behind or it is made up;
				// counted at ours, the member would never hear a claim at its own incarnation to refute.
				if (!cur || u.inc > cur.incarnation) {
					if (u.sig === undefined || !this.signed(u, from)) return;
					this.apply({ ...u, state: "alive" }, from);
				}
				const m = this.members.get(u.id)!;
				if (m.state === "dead" || m.state === "left") return;
				const s = this.suspicions.get(m.id);
				// No-ops before any crypto: a claimer already counted, or enough confirmations.
				if (m.state === "suspect" && (!s || !this.counts(s, u.by))) return;
				// A confirmation counts in the name of the member that signed it, whoever relays it.
				if (!this.claimSigned(u, from)) return;
				if (m.state === "alive") {
					this.startSuspicion(m, u.by);
					this.spread(u, m.addr);
					this.checkSuspect(m);
				} else if (this.confirm(m.id, u.by)) {
					// A new independent confirmation: pass it on (with its claimer's signature) so
					// others shorten their timeouts too.
					this.spread(u);
				}
				return;
			}
			case "left": {
				// Only the member itself can say it left.
				if (!cur || cur.state === "dead" || cur.state === "left") return;
				if (!this.signed(u, from)) return;
				this.sigs.set(u.id, u.sig!);
				cur.incarnation = u.inc;
				cur.addr = u.addr;
				cur.meta = u.meta ?? {};
				this.markDown(cur, "left");
				this.spread(u);
				return;
			}
		}
	}

	/**
	 * Claims about this node: refute suspect, dead or left with a higher incarnation; and take one
	 * above our own alive statement of a previous life (we restarted at a lower incarnation: the
	 * others would refuse everything we say as stale, our new metadata included).
	 */
	private applySelf(u: Update, from: string): void {
		if (this.self.state !== "alive" || u.inc < this.self.incarnation) return;
		// Our own statement, echoed; at our incarnation but with another address it is a previous
		// life's (we came back on a new IP at the incarnation we had): outdo it, or others keep the old.
		if (u.state === "alive" && u.inc === this.self.incarnation && u.addr === this.self.addr) return;
		if (u.inc === this.self.incarnation && u.state === "alive" && !this.signed(u, from)) return;
		// A claim above any incarnation of this life is believable only with our own signature (from
		// before a restart); a bare one could push our incarnation anywhere.
		if (u.inc > this.self.incarnation && (u.sig === undefined || !this.signed(u, from))) return;
		this.self.incarnation = u.inc + 1;
		this.stats.refutations++;
		if (u.state === "suspect") this.awareness = Math.min(this.awareness + 1, this.cfg.awarenessMax - 1);
		// Tell whoever brought the news at once (it may be across a healed partition), and others.
		// A missed refutation is a false failure: the refuter itself tells twice as many.
		this.spread(this.selfUpdate("alive"), from, 2 * this.cfg.indirectChecks);
	}

	/**
	 * Whether u carries its member's signature over the statement it makes (alive, or left; a
	 * suspect or dead claim's signature is over the alive statement it refers to). Verified once:
	 * the same statement heard again is a cache hit. Refused, counted and logged otherwise.
	 */
	private signed(u: Update, from: string): boolean {
		const state = u.state === "left" ? "left" : "alive";
		let why: string;
		if (u.sig === undefined) why = "unsigned";
		else {
			const data = statementBytes(u.id, state, u.inc, u.addr, u.meta);
			if (this.verified.has(u.sig, data)) return true;
			this.stats.verified++;
			if (this.crypto.verify(u.id, data, u.sig)) {
				this.verified.add(u.sig, data);
				return true;
			}
			why = "not signed by that member's node key";
		}
		this.stats.badSignatures++;
		this.refuse(from, new BadSignatureError(u.id, state, u.inc, why), u.id);
		return false;
	}

	/**
	 * Whether a suspect or dead claim carries its claimer's signature (`csig` over claimBytes), and
	 * the claimer is a live member we know: only then may it count as a confirmation. Refused,
	 * counted and logged otherwise.
	 */
	private claimSigned(u: Update, from: string): boolean {
		const state = u.state as "suspect" | "dead";
		const by = this.members.get(u.by);
		if (!by || (by.state !== "alive" && by.state !== "suspect")) {
			this.stats.unknownClaimers++;
			this.refuse(from, new UnknownClaimerError(u.id, state, u.by, by?.state), u.id);
			return false;
		}
		let why: string;
		if (u.csig === undefined) why = `not signed by its claimer ${u.by}`;
		else {
			const data = claimBytes(u.by, u.id, state, u.inc);
			if (this.verified.has(u.csig, data)) return true;
			this.stats.verified++;
			if (this.crypto.verify(u.by, data, u.csig)) {
				this.verified.add(u.csig, data);
				return true;
			}
			why = `signature is not ${u.by}'s`;
		}
		this.stats.badSignatures++;
		this.refuse(from, new BadSignatureError(u.id, `${state} claim`, u.inc, why), u.id);
		return false;
	}

	/**
	 * Our claim about m (suspect, or dead when our own timer ended), signed by us. In full state
	 * (`withStatement`) it carries m's own signed statement of the incarnation it is about, so a
	 * receiver that has not heard that incarnation catches up; pushed and piggybacked claims go
	 * without (they are most of the bytes a suspicion costs, and nearly every receiver is current).
	 */
	private ownClaim(m: Member, state: "suspect" | "dead", withStatement = false): Update & { csig: Uint8Array } {
		let c = this.ownClaims.get(m.id);
		if (!c || c.state !== state || c.inc !== m.incarnation) {
			const csig = this.crypto.sign(claimBytes(this.id, m.id, state, m.incarnation));
			c = { state, inc: m.incarnation, csig };
			this.ownClaims.set(m.id, c);
		}
		const u = { id: m.id, addr: m.addr, inc: m.incarnation, state, by: this.id, csig: c.csig };
		return withStatement ? { ...u, meta: m.meta, sig: this.sigs.get(m.id) } : u;
	}

	private markDown(m: Member, state: "dead" | "left"): void {
		this.clearSuspicion(m.id);
		m.state = state;
		this.liveN = -1;
		m.since = this.clock.now();
		this.emit(state === "left" ? "leave" : "fail", m);
	}

	private suspicionBounds(): { min: number; max: number } {
		const n = Math.max(this.liveCount(), 1);
		const min = this.cfg.suspicionMult * Math.max(1, Math.log10(n + 1)) * this.cfg.probeIntervalMs;
		return { min: Math.max(min, this.cfg.suspicionMinMs), max: min * this.cfg.suspicionMaxTimeoutMult };
	}

	private startSuspicion(m: Member, by: string): void {
		this.clearSuspicion(m.id);
		m.state = "suspect";
		m.since = this.clock.now();
		const { min, max } = this.suspicionBounds();
		const s: Suspicion = { timer: { cancel() {} }, start: this.clock.now(), confirmations: new Set([by]), min, max };
		this.suspicions.set(m.id, s);
		this.rearm(m.id, s);
		this.emit("suspect", m);
	}

	/** Lifeguard: timeout = max(min, max - (max - min) * log(C + 1) / log(K + 1)). */
	private rearm(id: string, s: Suspicion): void {
		s.timer.cancel();
		// Confirmations to expect: none in a cluster too small to have independent witnesses.
		const k = Math.max(0, Math.min(this.cfg.suspicionConfirmations, this.liveCount() - 2));
		const c = Math.min(s.confirmations.size - 1, k);
		const timeout = k === 0 ? s.min : Math.max(s.min, s.max - ((s.max - s.min) * Math.log(c + 1)) / Math.log(k + 1));
		const remaining = Math.max(0, s.start + timeout - this.clock.now());
		s.timer = this.clock.setTimer(remaining, () => {
			const m = this.members.get(id);
			if (m?.state !== "suspect" || !this.running) return;
			this.markDown(m, "dead");
			this.spread(this.ownClaim(m, "dead"));
		});
	}

	/**
	 * Count an independent confirmation of a suspicion; true if it was new and still shortens the
	 * timeout (only the first K do: passing on more would flood a partition with them).
	 */
	private confirm(id: string, by: string): boolean {
		const s = this.suspicions.get(id);
		if (!s || !this.counts(s, by)) return false;
		s.confirmations.add(by);
		this.rearm(id, s);
		return true;
	}

	/** Whether by's claim would still shorten s: once per claimer, and only the first K. */
	private counts(s: Suspicion, by: string): boolean {
		return !s.confirmations.has(by) && s.confirmations.size <= this.cfg.suspicionConfirmations;
	}

	private clearSuspicion(id: string): void {
		this.suspicions.get(id)?.timer.cancel();
		this.suspicions.delete(id);
	}

	// --- probing -------------------------------------------------------------------------------

	private scale(): number {
		return this.awareness + 1;
	}

	private scheduleProbe(ms: number): void {
		this.after(ms, () => {
			this.probe();
			this.scheduleProbe(this.cfg.probeIntervalMs * this.scale());
		});
	}

	/**
	 * A full-state exchange costs O(n) bytes: above 32 members the interval grows with log2(n)
	 * (memberlist's pushPullScale), so push-pull stays a small share of the traffic.
	 */
	private pushPullInterval(): number {
		const n = this.liveCount();
		const scale = n <= 32 ? 1 : Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
		return this.cfg.pushPullIntervalMs * scale;
	}

	private schedulePushPull(): void {
		this.after(this.pushPullInterval() * (0.5 + this.random()), () => {
			const [m] = this.pickRandom(1, (x) => x.id !== this.id && x.state === "alive");
			if (m) this.sendState(m.addr, false);
			// Like serf's reconnect: also try one failed member, so healed partitions merge.
			const [d] = this.pickRandom(1, (x) => x.state === "dead");
			if (d) this.sendState(d.addr, false);
			this.schedulePushPull();
		});
	}

	private addToProbeOrder(id: string): void {
		if (!this.probeOrder.includes(id))
			this.probeOrder.splice(Math.floor(this.random() * (this.probeOrder.length + 1)), 0, id);
	}

	private nextTarget(): Member | undefined {
		for (let tries = 0; tries < this.probeOrder.length; tries++) {
			if (this.probeIdx >= this.probeOrder.length) {
				// Reshuffle each round, dropping members that are gone.
				this.probeOrder = this.probeOrder.filter((id) => {
					const m = this.members.get(id);
					return m && (m.state === "alive" || m.state === "suspect");
				});
				for (let i = this.probeOrder.length - 1; i > 0; i--) {
					const j = Math.floor(this.random() * (i + 1));
					[this.probeOrder[i], this.probeOrder[j]] = [this.probeOrder[j]!, this.probeOrder[i]!];
				}
				this.probeIdx = 0;
				if (this.probeOrder.length === 0) return undefined;
			}
			const m = this.members.get(this.probeOrder[this.probeIdx++]!);
			if (m && (m.state === "alive" || m.state === "suspect")) return m;
		}
		return undefined;
	}

	private pickRandom(n: number, ok: (m: Member) => boolean): Member[] {
		const all = this.list;
		// Mostly the pool is most members: sample with rejection, O(n) instead of O(members).
		if (all.length > 4 * n + 8) {
			const out = new Set<Member>();
			for (let tries = 0; tries < 8 * n + 16 && out.size < n; tries++) {
				const m = all[Math.floor(this.random() * all.length)]!;
				if (ok(m)) out.add(m);
			}
			if (out.size === n) return [...out];
		}
		const pool = all.filter(ok);
		const out: Member[] = [];
		while (out.length < n && pool.length > 0) out.push(pool.splice(Math.floor(this.random() * pool.length), 1)[0]!);
		return out;
	}

	/**
	 * Calls done("ack") on the first ack for seq, or done("timeout") after ms; nacks go to onNack.
	 * Callbacks, not promises: on the simulator's virtual clock everything must run inside timers.
	 */
	private expect(seq: number, ms: number, done: (r: "ack" | "timeout") => void, onNack?: () => void): void {
		const timer = this.after(ms, () => {
			this.acks.delete(seq);
			done("timeout");
		});
		this.acks.set(seq, (kind) => {
			if (kind === "nack") {
				onNack?.();
				return;
			}
			timer.cancel();
			this.acks.delete(seq);
			done("ack");
		});
	}

	/**
	 * Someone else suspects m: probe it now rather than at our turn in the round robin, so that
	 * if it is really gone the independent confirmations that shorten the suspicion arrive within
	 * one probe, and if it is not, our ack-less silence does not count against it. About
	 * 2 * (K + 1) members do this per suspicion, whatever the cluster size.
	 */
	private checkSuspect(m: Member): void {
		const want = 2 * (this.cfg.suspicionConfirmations + 1);
		if (this.random() < want / Math.max(1, this.liveCount() - 2)) this.probe(m);
	}

	private probe(given?: Member): void {
		const target = given ?? this.nextTarget();
		if (!target) return;
		this.stats.probes++;
		const scale = this.scale();
		const seq = ++this.seq;
		this.expect(seq, this.cfg.probeTimeoutMs * scale, (r) => {
			if (r === "ack") {
				this.awareness = Math.max(0, this.awareness - 1);
				return;
			}
			this.probeIndirectly(target, scale, seq);
		});
		this.send(target.addr, { t: "ping", seq, to: probeTag(target.id), u: this.piggyback() });
	}

	/** Ask k others to probe the target; each answers ack (reached) or nack (could not reach it). */
	private probeIndirectly(target: Member, scale: number, directSeq: number): void {
		this.stats.indirect++;
		const helpers = this.pickRandom(
			this.cfg.indirectChecks,
			(m) => m.id !== this.id && m.id !== target.id && m.state === "alive",
		);
		const seq = ++this.seq;
		const window = (this.cfg.probeIntervalMs - this.cfg.probeTimeoutMs) * scale;
		let nacks = 0;
		this.expect(
			seq,
			window,
			(r) => {
				this.acks.delete(directSeq);
				if (r === "ack") return;
				// Lifeguard: helpers that did not even nack suggest our own network is the problem.
				if (helpers.length > 0 && nacks < helpers.length) {
					this.stats.nacksMissed += helpers.length - nacks;
					this.awareness = Math.min(this.awareness + 1, this.cfg.awarenessMax - 1);
				}
				const cur = this.members.get(target.id);
				if (!cur) return;
				if (cur.state !== "alive" && cur.state !== "suspect") return;
				const u = this.ownClaim(cur, "suspect");
				if (cur.state === "alive") {
					this.startSuspicion(cur, this.id);
					// Each member fails it on its own timer, started when it first hears: push a new
					// suspicion to 2k (a member missed by every push starts late, by a probe interval).
					this.spread(u, cur.addr, 2 * this.cfg.indirectChecks);
				} else if (cur.state === "suspect" && this.confirm(cur.id, this.id)) {
					// We already suspected it on others' word; our own failed probe is an independent
					// confirmation (Lifeguard), for us and for everyone we tell.
					this.spread(u);
				}
			},
			() => nacks++,
		);
		// A late answer to the direct ping counts too.
		this.acks.set(directSeq, () => this.acks.get(seq)?.("ack"));
		for (const h of helpers)
			this.send(h.addr, {
				t: "pingReq",
				seq,
				from: this.id,
				target: target.id,
				targetAddr: target.addr,
				w: Math.round(window),
				u: this.piggyback(),
			});
	}

	/** Probe target for a requester; nack in time for its window (w ms) if the target stays silent. */
	private relayProbe(requester: string, seq: number, target: string, targetAddr: string, w?: number): void {
		const mine = ++this.seq;
		const wait = w !== undefined ? Math.max(1, w * NACK_AT) : this.cfg.probeTimeoutMs;
		this.expect(mine, wait, (r) => this.send(requester, { t: r === "ack" ? "ack" : "nack", seq, u: [] }));
		// Where the target's own signed statement says it is, if we know it (a request cannot redirect us).
		const addr = this.members.get(target)?.addr ?? targetAddr;
		this.send(addr, { t: "ping", seq: mine, to: probeTag(target), u: this.piggyback() });
	}
}
