// SWIM membership with the Lifeguard refinements (after hashicorp/memberlist):
// - each member probes one other per interval (shuffled round robin), then asks k others to
//   probe it indirectly; intermediaries answer with a nack when they got no ack (Lifeguard);
// - a member that misses its probes is suspected; the suspicion timeout starts long and shrinks
//   as independent members confirm it (Lifeguard), and a suspected member refutes by raising its
//   incarnation; when the timeout ends it is declared failed;
// - this node's own health (missed nacks, refutations) scales its probe timing (Lifeguard's
//   local health awareness), so a slow node does not accuse healthy ones;
// - state changes are piggybacked on probes a bounded number of times, and members exchange
//   full state periodically (push-pull) and at join.
import { EventEmitter } from "node:events";
import { pack } from "msgpackr";
import { decodePacket, encodePacket, type Packet, probeTag } from "./codec.ts";
import { type MembershipConfig, validateConfig } from "./config.ts";
import { MetadataTooLargeError } from "./errors.ts";
import { type Clock, type PacketTransport, realClock, type Timer } from "./transport.ts";
import type { Member, MemberMeta, MemberState, MembershipEvents, Update } from "./types.ts";

export interface MembershipOptions {
	id: string;
	transport: PacketTransport;
	/** The cluster secret that authenticates every packet. */
	clusterKey: Uint8Array;
	config: MembershipConfig;
	meta?: MemberMeta;
	clock?: Clock;
	random?: () => number;
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
	private probeOrder: string[] = [];
	private probeIdx = 0;
	private seq = 0;
	private acks = new Map<number, (kind: "ack" | "nack") => void>();
	/** Updates still to piggyback, one per member (a newer claim replaces an older one). */
	private queue = new Map<string, { u: Update; sent: number }>();
	private suspicions = new Map<string, Suspicion>();
	private awareness = 0;
	private running = false;
	private timers: Timer[] = [];
	readonly stats = { refused: 0, stale: 0, probes: 0, indirect: 0, refutations: 0 };

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
		this.checkMeta(this.meta);
	}

	private checkMeta(meta: MemberMeta): void {
		const size = pack(meta).length;
		if (size > this.cfg.maxMetaBytes) throw new MetadataTooLargeError(size, this.cfg.maxMetaBytes);
	}

	get bytesSent(): number {
		return this.tr.bytesSent;
	}

	async start(): Promise<void> {
		await this.tr.start((from, data) => this.onPacket(from, data));
		this.self = {
			id: this.id,
			addr: this.tr.addr,
			incarnation: 1,
			state: "alive",
			meta: this.meta,
			since: this.clock.now(),
		};
		this.members.set(this.id, this.self);
		this.running = true;
		this.scheduleProbe(this.random() * this.cfg.probeIntervalMs);
		if (this.cfg.pushPullIntervalMs > 0) this.schedulePushPull();
	}

	/** Contact seed addresses and exchange full state with them. */
	join(seeds: string[]): void {
		const others = seeds.filter((a) => a !== this.tr.addr);
		if (others.length === 0 || !this.running) return;
		for (const addr of others) this.send(addr, { t: "sync", from: this.id, reply: false, u: this.fullState() });
		// Datagrams get lost: keep asking until someone answered (we know another live member).
		this.timers.push(
			this.clock.setTimer(this.cfg.probeIntervalMs, () => {
				if (this.running && this.liveCount() <= 1) this.join(others);
			}),
		);
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
		this.self.incarnation++;
		this.self.state = "left";
		const u = this.selfUpdate("left");
		// Tell a few members directly; gossip carries it to the rest.
		for (const m of this.pickRandom(
			this.cfg.indirectChecks + 2,
			(x) => x.id !== this.id && x.state !== "dead" && x.state !== "left",
		)) {
			this.send(m.addr, { t: "sync", from: this.id, reply: true, u: [u] });
		}
		this.enqueue(u);
		await new Promise<void>((r) => this.clock.setTimer(waitMs, r));
		await this.stop();
	}

	async stop(): Promise<void> {
		this.running = false;
		for (const t of this.timers) t.cancel();
		for (const s of this.suspicions.values()) s.timer.cancel();
		this.timers = [];
		await this.tr.stop();
	}

	// --- packets -------------------------------------------------------------------------------

	private send(addr: string, p: Packet): void {
		if (!this.running && p.t !== "sync") return;
		this.tr.send(addr, encodePacket(p, this.key));
	}

	private piggyback(): Update[] {
		if (this.queue.size === 0) return [];
		const limit = this.cfg.retransmitMult * Math.ceil(Math.log10(this.liveCount() + 1));
		// The least-sent updates first; a linear pass keeps this cheap with thousands queued.
		const pick: Array<{ u: Update; sent: number }> = [];
		for (const q of this.queue.values()) {
			if (pick.length < MAX_PIGGYBACK) {
				pick.push(q);
				if (pick.length === MAX_PIGGYBACK) pick.sort((a, b) => a.sent - b.sent);
			} else if (q.sent < pick[MAX_PIGGYBACK - 1]!.sent) {
				pick[MAX_PIGGYBACK - 1] = q;
				pick.sort((a, b) => a.sent - b.sent);
			}
		}
		for (const q of pick) {
			q.sent++;
			if (q.sent >= limit) this.queue.delete(q.u.id);
		}
		return pick.map((q) => q.u);
	}

	private enqueue(u: Update): void {
		this.queue.delete(u.id); // re-insert so iteration order favours new claims
		this.queue.set(u.id, { u, sent: 0 });
	}

	private liveCount(): number {
		let n = 0;
		for (const m of this.members.values()) if (m.state === "alive" || m.state === "suspect") n++;
		return n;
	}

	private selfUpdate(state: MemberState): Update {
		return { id: this.id, addr: this.self.addr, inc: this.self.incarnation, state, meta: this.meta, by: this.id };
	}

	private fullState(): Update[] {
		return [...this.members.values()].map((m) => ({
			id: m.id,
			addr: m.addr,
			inc: m.incarnation,
			state: m.state,
			meta: m.meta,
			by: this.id,
		}));
	}

	private onPacket(from: string, data: Uint8Array): void {
		if (!this.running) return;
		let p: Packet;
		try {
			p = decodePacket(data, this.key, this.cfg.maxPacketBytes);
		} catch (err) {
			this.stats.refused++;
			this.log?.warn(
				{ peer: from, err: (err as Error).message, code: (err as { code?: string }).code },
				"membership packet refused",
			);
			this.emit("refused", { from, error: err as Error });
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
				this.relayProbe(from, p.seq, p.target, p.targetAddr);
				break;
			case "sync":
				if (!p.reply) this.send(from, { t: "sync", from: this.id, reply: true, u: this.fullState() });
				break;
		}
	}

	// --- state changes -------------------------------------------------------------------------

	private apply(u: Update, from: string): void {
		if (u.meta !== undefined && pack(u.meta).length > this.cfg.maxMetaBytes) {
			this.stats.refused++;
			const error = new MetadataTooLargeError(pack(u.meta).length, this.cfg.maxMetaBytes);
			this.log?.warn({ peer: from, member: u.id, err: error.message }, "member update refused");
			this.emit("refused", { from, error });
			return;
		}
		if (u.id === this.id) {
			// Someone thinks we are suspect or dead: refute with a higher incarnation.
			if (
				(u.state === "suspect" || u.state === "dead") &&
				u.inc >= this.self.incarnation &&
				this.self.state === "alive"
			) {
				this.self.incarnation = u.inc + 1;
				this.stats.refutations++;
				this.awareness = Math.min(this.awareness + 1, this.cfg.awarenessMax - 1);
				this.enqueue(this.selfUpdate("alive"));
				// Tell whoever brought the news at once (it may be across a healed partition).
				this.send(from, { t: "sync", from: this.id, reply: true, u: [this.selfUpdate("alive")] });
			}
			return;
		}
		const cur = this.members.get(u.id);
		const now = this.clock.now();
		if (!cur) {
			if (u.state === "dead" || u.state === "left") return;
			const m: Member = { id: u.id, addr: u.addr, incarnation: u.inc, state: u.state, meta: u.meta ?? {}, since: now };
			this.members.set(u.id, m);
			this.probeOrder.splice(Math.floor(this.random() * (this.probeOrder.length + 1)), 0, u.id);
			this.enqueue({ ...u, by: u.by });
			this.emit("join", m);
			if (u.state === "suspect") this.startSuspicion(m, u.by);
			return;
		}
		switch (u.state) {
			case "alive":
				if (u.inc <= cur.incarnation && !(cur.state === "dead" && u.inc > cur.incarnation)) {
					if (u.inc < cur.incarnation) this.stats.stale++;
					return;
				}
				{
					const was = cur.state;
					const metaChanged = JSON.stringify(cur.meta) !== JSON.stringify(u.meta ?? cur.meta);
					cur.incarnation = u.inc;
					cur.addr = u.addr;
					if (u.meta) cur.meta = u.meta;
					this.clearSuspicion(cur.id);
					if (was !== "alive") {
						cur.state = "alive";
						cur.since = now;
						if (was === "dead" || was === "left") this.emit("join", cur);
						else this.emit("alive", cur);
					} else if (metaChanged) this.emit("update", cur);
					this.enqueue(u);
				}
				return;
			case "suspect":
				if (u.inc < cur.incarnation) {
					this.stats.stale++;
					return;
				}
				if (cur.state === "alive" || (cur.state === "suspect" && u.inc > cur.incarnation)) {
					cur.incarnation = u.inc;
					this.startSuspicion(cur, u.by);
					this.enqueue(u);
				} else if (cur.state === "suspect") {
					this.confirm(cur.id, u.by);
				}
				return;
			case "dead":
			case "left":
				if (u.inc < cur.incarnation || cur.state === "dead" || cur.state === "left") return;
				cur.incarnation = u.inc;
				this.markDown(cur, u.state);
				this.enqueue(u);
				return;
		}
	}

	private markDown(m: Member, state: "dead" | "left"): void {
		this.clearSuspicion(m.id);
		m.state = state;
		m.since = this.clock.now();
		this.emit(state === "left" ? "leave" : "fail", m);
	}

	private suspicionBounds(): { min: number; max: number } {
		const n = Math.max(this.liveCount(), 1);
		const min = this.cfg.suspicionMult * Math.max(1, Math.log10(n + 1)) * this.cfg.probeIntervalMs;
		return { min, max: min * this.cfg.suspicionMaxTimeoutMult };
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
		const k = Math.max(0, Math.min(this.cfg.suspicionMult - 2, this.liveCount() - 2));
		const c = Math.min(s.confirmations.size - 1, k);
		const timeout = k === 0 ? s.min : Math.max(s.min, s.max - ((s.max - s.min) * Math.log(c + 1)) / Math.log(k + 1));
		const remaining = Math.max(0, s.start + timeout - this.clock.now());
		s.timer = this.clock.setTimer(remaining, () => {
			const m = this.members.get(id);
			if (m?.state !== "suspect" || !this.running) return;
			this.markDown(m, "dead");
			this.enqueue({ id: m.id, addr: m.addr, inc: m.incarnation, state: "dead", by: this.id });
		});
	}

	private confirm(id: string, by: string): void {
		const s = this.suspicions.get(id);
		if (!s || s.confirmations.has(by)) return;
		s.confirmations.add(by);
		this.rearm(id, s);
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
		if (!this.running) return;
		this.timers = this.timers.slice(-16);
		this.timers.push(
			this.clock.setTimer(ms, () => {
				this.probe();
				this.scheduleProbe(this.cfg.probeIntervalMs * this.scale());
			}),
		);
	}

	private schedulePushPull(): void {
		this.timers.push(
			this.clock.setTimer(this.cfg.pushPullIntervalMs * (0.5 + this.random()), () => {
				if (!this.running) return;
				const [m] = this.pickRandom(1, (x) => x.id !== this.id && x.state === "alive");
				if (m) this.send(m.addr, { t: "sync", from: this.id, reply: false, u: this.fullState() });
				// Like serf's reconnect: also try one failed member, so healed partitions merge.
				const [d] = this.pickRandom(1, (x) => x.state === "dead");
				if (d) this.send(d.addr, { t: "sync", from: this.id, reply: false, u: this.fullState() });
				this.schedulePushPull();
			}),
		);
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
		const pool = [...this.members.values()].filter(ok);
		const out: Member[] = [];
		while (out.length < n && pool.length > 0) out.push(pool.splice(Math.floor(this.random() * pool.length), 1)[0]!);
		return out;
	}

	/**
	 * Calls done("ack") on the first ack for seq, or done("timeout") after ms; nacks go to onNack.
	 * Callbacks, not promises: on the simulator's virtual clock everything must run inside timers.
	 */
	private expect(seq: number, ms: number, done: (r: "ack" | "timeout") => void, onNack?: () => void): void {
		const timer = this.clock.setTimer(ms, () => {
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

	private probe(): void {
		const target = this.nextTarget();
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
		let nacks = 0;
		this.expect(
			seq,
			(this.cfg.probeIntervalMs - this.cfg.probeTimeoutMs) * scale,
			(r) => {
				this.acks.delete(directSeq);
				if (r === "ack" || !this.running) return;
				// Lifeguard: helpers that did not even nack suggest our own network is the problem.
				if (helpers.length > 0 && nacks < helpers.length)
					this.awareness = Math.min(this.awareness + 1, this.cfg.awarenessMax - 1);
				const cur = this.members.get(target.id);
				if (cur && cur.state === "alive") {
					this.startSuspicion(cur, this.id);
					this.enqueue({ id: cur.id, addr: cur.addr, inc: cur.incarnation, state: "suspect", by: this.id });
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
				u: this.piggyback(),
			});
	}

	private relayProbe(requester: string, seq: number, target: string, targetAddr: string): void {
		const mine = ++this.seq;
		this.expect(mine, this.cfg.probeTimeoutMs, (r) =>
			this.send(requester, { t: r === "ack" ? "ack" : "nack", seq, u: [] }),
		);
		this.send(targetAddr, { t: "ping", seq: mine, to: probeTag(target), u: this.piggyback() });
	}
}
