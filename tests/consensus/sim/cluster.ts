// A deterministic simulated cluster driving the pure Raft core: seeded clock, a network that
// delays, drops, duplicates, reorders and partitions (one node cut off or the cluster split in two
// groups, also one-way), disks that lose the write in progress or keep only part of it at a crash,
// a seeded schedule of membership changes (add/remove/demote voters, add/promote/remove
// non-voters) and leadership transfers, and KV clients whose history is checked for
// linearizability, and an adversary outside the configuration forging well-formed messages. Every
// run checks the Raft safety invariants as it goes: election safety and leader append-only after
// every step, log matching among all nodes periodically and at the end.
import { pack, unpack } from "msgpackr";
import {
	type Configuration,
	defaultCoreConfig,
	encodeConfiguration,
	type HardState,
	type LogEntry,
	type Message,
	RaftCore,
	type Ready,
	type SnapshotMeta,
	withoutServer,
	withServer,
} from "../../../consensus/index.ts";
import type { KvOp } from "./linearizability.ts";
import { Rng } from "./rng.ts";

export interface SimOptions {
	seed: number;
	nodes?: number;
	/** Time units of chaos, then a calm phase to converge. */
	chaosTime?: number;
	calmTime?: number;
	clients?: number;
	keys?: number;
	faults?: boolean;
	snapshotEvery?: number;
	/** Servers outside the initial configuration, available to membership changes. */
	spares?: number;
	/** Membership changes and leadership transfers during the chaos phase. */
	membership?: boolean;
	/**
	 * A non-member ("x1", never in any configuration) that sends members forged pre-votes, votes,
	 * heartbeats, appends (plausible indices, commits beyond the real one), acknowledgements,
	 * timeoutNow and serverInfo at random times, in both phases.
	 */
	adversary?: boolean;
}

export const ADVERSARY = "x1";

interface Disk {
	hard: HardState;
	entries: LogEntry[];
	snapshot?: { meta: SnapshotMeta; data: Uint8Array };
}

interface Node {
	id: string;
	core: RaftCore | undefined;
	disk: Disk;
	kv: Map<string, string>;
	/** Proposals this node accepted from clients: entry index -> op id. */
	proposals: Map<number, number>;
	/** ReadIndex requests: ctx -> op id, then (after the read state) waiting for applied >= index. */
	reads: Map<number, number>;
	readyReads: Array<{ index: number; op: number }>;
	tickPhase: number;
	/** While this node leads: the term of each entry it held (index -> term), to check append-only. */
	leaderLog?: Map<number, number>;
}

interface InFlight {
	at: number;
	seq: number;
	msg: Message;
}

interface ClientOp extends KvOp {
	id: number;
	node: string;
	deadline: number;
	done: boolean;
}

/** Live and named by its own latest configuration: a node whose term and commit the adversary must not move. */
const isMember = (n: Node): boolean => n.core?.configuration().servers.some((s) => s.id === n.id) === true;

export class InvariantError extends Error {
	override name = "InvariantError";
}

const TICK = 10;

const isReplication = (m: Message) =>
	m.type === "append" || m.type === "heartbeat" || m.type === "snapshot" || m.type === "timeoutNow";

export class SimCluster {
	readonly rng: Rng;
	readonly nodes: Node[] = [];
	private net: InFlight[] = [];
	private netSeq = 0;
	now = 0;
	private blocked = new Set<string>(); // "from>to"
	private leadersByTerm = new Map<number, string>();
	/** index -> "term:hash" of every entry any node applied. */
	private appliedLog = new Map<number, string>();
	readonly history: ClientOp[] = [];
	private nextOpId = 1;
	private clientBusy = new Map<number, ClientOp>();
	private readonly o: Required<SimOptions>;
	private readonly config: Configuration;
	stats = {
		delivered: 0,
		dropped: 0,
		crashes: 0,
		torn: 0,
		partitions: 0,
		splits: 0,
		elections: 0,
		snapshots: 0,
		installs: 0,
		configChanges: 0,
		configsApplied: 0,
		transfers: 0,
		/** Forged messages sent, delivered to a live member, refused by it, and answers sent to the adversary. */
		forged: 0,
		forgedDelivered: 0,
		forgedRefused: 0,
		answeredAdversary: 0,
		/** Refusals of real servers' messages (a removed server, a leader a lagging log does not name yet). */
		refusedOther: 0,
	};

	constructor(opts: SimOptions) {
		this.o = {
			nodes: 3,
			chaosTime: 4000,
			calmTime: 3000,
			clients: 3,
			keys: 3,
			faults: true,
			snapshotEvery: 25,
			spares: 2,
			membership: true,
			adversary: true,
			...opts,
		};
		this.rng = new Rng(opts.seed);
		const ids = Array.from({ length: this.o.nodes }, (_, i) => `s${i + 1}`);
		const spares = Array.from({ length: this.o.spares }, (_, i) => `s${this.o.nodes + i + 1}`);
		this.config = { servers: ids.map((id) => ({ id, address: id, suffrage: "voter" as const })) };
		// Bootstrapped like hashicorp/raft: the configuration is entry 1 of term 1 on every node;
		// spares start empty (no configuration, so they never campaign) until a leader adds them.
		const boot: LogEntry = { index: 1, term: 1, type: "configuration", data: encodeConfiguration(this.config) };
		for (const id of [...ids, ...spares]) {
			const disk: Disk = ids.includes(id)
				? { hard: { term: 1, vote: "", commit: 0 }, entries: [boot] }
				: { hard: { term: 0, vote: "", commit: 0 }, entries: [] };
			const node: Node = {
				id,
				core: undefined,
				disk,
				kv: new Map(),
				proposals: new Map(),
				reads: new Map(),
				readyReads: [],
				tickPhase: this.rng.int(0, TICK - 1),
			};
			this.nodes.push(node);
			this.start(node);
		}
	}

	private start(n: Node): void {
		n.core = new RaftCore(
			{
				...defaultCoreConfig(n.id, () => this.rng.next()),
				maxEntriesPerAppend: 8,
				maxInflight: 4,
				onRefuse: (m) => {
					if (m.from === ADVERSARY) this.stats.forgedRefused++;
					else this.stats.refusedOther++;
				},
			},
			{ hardState: n.disk.hard, snapshot: n.disk.snapshot?.meta, entries: n.disk.entries },
		);
		n.kv = n.disk.snapshot ? new Map(unpack(n.disk.snapshot.data) as Array<[string, string]>) : new Map();
		n.proposals.clear();
		n.reads.clear();
		n.readyReads = [];
		n.leaderLog = undefined;
	}

	private crash(n: Node): void {
		n.core = undefined;
		this.stats.crashes++;
	}

	node(id: string): Node {
		return this.nodes.find((n) => n.id === id)!;
	}

	leader(): Node | undefined {
		// The live leader with the highest term (a deposed one may not know yet).
		let best: Node | undefined;
		for (const n of this.nodes) {
			if (n.core?.role === "leader" && (!best || n.core.term > best.core!.term)) best = n;
		}
		return best;
	}

	// --- running ------------------------------------------------------------------------------

	run(): void {
		const end = this.o.chaosTime + this.o.calmTime;
		while (this.now < end) {
			const chaos = this.now < this.o.chaosTime;
			if (!chaos && this.now === this.o.chaosTime) this.calm();
			this.stepTime(chaos);
		}
		this.finalChecks();
	}

	private calm(): void {
		this.blocked.clear();
		for (const n of this.nodes) if (!n.core) this.start(n);
	}

	private stepTime(chaos: boolean): void {
		this.now++;
		for (const n of this.nodes) {
			if (n.core && this.now % TICK === n.tickPhase) {
				n.core.tick();
				this.process(n);
			}
		}
		this.deliver();
		if (this.o.adversary && this.rng.chance(0.01)) this.forge();
		if (chaos && this.o.faults) this.injectFaults();
		if (chaos && this.o.membership) this.changeMembership();
		// Clients stop halfway through the calm phase so the final convergence check is exact.
		if (this.now < this.o.chaosTime + this.o.calmTime / 2) this.clients(chaos);
		if (this.now % 100 === 0) this.checkLogMatching(this.nodes.filter((n) => n.core));
	}

	private deliver(): void {
		if (this.net.length === 0) return;
		const due = this.net.filter((f) => f.at <= this.now).sort((a, b) => a.at - b.at || a.seq - b.seq);
		if (due.length === 0) return;
		this.net = this.net.filter((f) => f.at > this.now);
		for (const f of due) {
			const n = this.nodes.find((x) => x.id === f.msg.to);
			if (!n) {
				this.stats.answeredAdversary++;
				continue;
			}
			if (!n.core) {
				this.stats.dropped++;
				continue;
			}
			if (f.msg.from === ADVERSARY) {
				// The adversary attacks members. A node outside its own latest configuration (being
				// added, or removed) takes replication from anyone by design (README: "Who may talk
				// to a server"); keeping such peers out is the transport's authorize hook's job.
				if (!isMember(n)) {
					this.stats.dropped++;
					continue;
				}
				this.stats.forgedDelivered++;
			}
			this.stats.delivered++;
			n.core.step(f.msg);
			this.process(n);
		}
	}

	private sendAll(from: Node, msgs: Message[]): void {
		for (const m of msgs) {
			if (this.blocked.has(`${m.from}>${m.to}`) || (this.o.faults && this.rng.chance(0.02))) {
				this.stats.dropped++;
				continue;
			}
			let msg = m;
			if (m.type === "snapshot") {
				// The shell attaches the snapshot's data, as the real transport does.
				const snap = from.disk.snapshot;
				if (!snap || snap.meta.index !== m.meta.index) continue;
				msg = { ...m, data: snap.data };
			}
			const copies = this.o.faults && this.rng.chance(0.01) ? 2 : 1;
			for (let c = 0; c < copies; c++) this.net.push({ at: this.now + this.rng.int(1, 15), seq: this.netSeq++, msg });
		}
	}

	private injectFaults(): void {
		const r = this.rng;
		if (r.chance(0.0015)) {
			const live = this.nodes.filter((n) => n.core);
			if (live.length > 0) this.crash(r.pick(live));
		}
		for (const n of this.nodes) if (!n.core && r.chance(0.004)) this.start(n);
		if (r.chance(0.001)) {
			// A partition, sometimes in one direction only: one node cut off from the rest, or the
			// cluster split into two random groups (either may hold a majority, or neither).
			this.stats.partitions++;
			this.blocked.clear();
			const oneWay = r.chance(0.3);
			let side: Set<string>;
			if (r.chance(0.5)) {
				side = new Set([r.pick(this.nodes).id]);
			} else {
				this.stats.splits++;
				side = new Set(this.nodes.filter(() => r.chance(0.5)).map((n) => n.id));
			}
			for (const a of side) {
				for (const b of this.nodes) {
					if (side.has(b.id)) continue;
					this.blocked.add(`${a}>${b.id}`);
					if (!oneWay) this.blocked.add(`${b.id}>${a}`);
				}
			}
		}
		if (r.chance(0.002)) this.blocked.clear();
	}

	/** One forged, well-formed message from the adversary to a random member. */
	private forge(): void {
		const r = this.rng;
		const targets = this.nodes.filter(isMember);
		if (targets.length === 0) return;
		const n = r.pick(targets);
		const core = n.core!;
		const log = core.log;
		const term = core.term + r.int(0, 3);
		const base = { term, from: ADVERSARY, to: n.id };
		const last = log.lastIndex();
		const evil = (index: number): LogEntry => ({
			index,
			term,
			type: "command",
			data: pack({ op: -1, key: `k${r.int(1, this.o.keys)}`, value: "forged" }),
		});
		// Appends that match the tail (prevIndex = last) or overwrite it from the commit point on.
		const prevIndex = r.chance(0.5) ? last : Math.max(log.committed, log.snapshotIndex);
		const count = r.int(0, 3);
		const entries = Array.from({ length: count }, (_, i) => evil(prevIndex + 1 + i));
		const beyond = last + count + r.int(1, 50);
		const kinds: Array<() => Message> = [
			() => ({ ...base, type: "vote", pre: true, transfer: false, lastIndex: last + r.int(0, 5), lastTerm: term }),
			() => ({ ...base, type: "vote", pre: false, transfer: r.chance(0.5), lastIndex: last + 5, lastTerm: term }),
			() => ({ ...base, type: "heartbeat", commit: beyond, ctx: 0 }),
			() => ({ ...base, type: "append", prevIndex, prevTerm: log.term(prevIndex) ?? 0, entries, commit: beyond }),
			() => ({ ...base, type: "timeoutNow" }),
			() => ({ ...base, type: "serverInfo", about: ADVERSARY, known: true }),
			() => ({ ...base, type: "appendResp", success: true, index: last, hintIndex: 0, hintTerm: 0 }),
			() => ({ ...base, type: "heartbeatResp", ctx: r.int(0, 5) }),
			() => ({ ...base, type: "voteResp", pre: r.chance(0.5), granted: true }),
		];
		const msg = r.pick(kinds)();
		this.stats.forged++;
		this.net.push({ at: this.now + r.int(1, 15), seq: this.netSeq++, msg });
	}

	// --- the shell's Ready loop ---------------------------------------------------------------

	private process(n: Node): void {
		const core = n.core;
		if (!core) return;
		while (core.hasReady()) {
			const rd = core.ready();
			if (rd.softState?.role === "leader") this.onNewLeader(n);
			// Replication messages of a leader go out while its own write is in flight (as in the
			// shell); everything else (votes, acks) only once the write is durable.
			const early = rd.messages.filter(isReplication);
			this.sendAll(n, early);
			if (!this.persist(n, rd)) return; // crashed mid-write
			this.sendAll(
				n,
				rd.messages.filter((m) => !isReplication(m)),
			);
			this.apply(n, rd);
			core.advance(rd);
			this.maybeSnapshot(n);
			this.answerReads(n);
			this.checkLeaderAppendOnly(n);
		}
		// The leader's log cannot have changed since the last check: an append leaves a Ready.
		this.checkElectionSafety(n);
		this.checkConfiguration(n);
	}

	/** Returns false when the node crashed while writing (the tail may be torn). */
	private persist(n: Node, rd: Ready): boolean {
		const d = n.disk;
		const crashNow = this.o.faults && this.now < this.o.chaosTime && this.rng.chance(0.0008);
		if (rd.snapshot) {
			d.snapshot = rd.snapshot;
			d.entries = [];
			n.kv = new Map(unpack(rd.snapshot.data) as Array<[string, string]>);
			this.stats.installs++;
		}
		let entries = rd.entries;
		if (crashNow) {
			entries = entries.slice(0, this.rng.int(0, entries.length));
			this.stats.torn++;
		}
		if (entries.length > 0) {
			const first = entries[0]!.index;
			d.entries = d.entries.filter((e) => e.index < first).concat(entries);
		}
		if (crashNow) {
			this.crash(n);
			return false;
		}
		if (rd.hardState) d.hard = rd.hardState;
		return true;
	}

	private apply(n: Node, rd: Ready): void {
		for (const e of rd.committed) {
			const key = `${e.term}:${Buffer.from(e.data).toString("base64")}`;
			const seen = this.appliedLog.get(e.index);
			if (seen !== undefined && seen !== key) {
				throw new InvariantError(`state machine safety: ${n.id} applied a different entry at ${e.index}`);
			}
			if (seen === undefined && e.type === "configuration" && e.index > 1) this.stats.configsApplied++;
			this.appliedLog.set(e.index, key);
			if (e.type !== "command") continue;
			const cmd = unpack(e.data) as { op: number; key: string; value: string };
			n.kv.set(cmd.key, cmd.value);
			const opId = n.proposals.get(e.index);
			if (opId !== undefined) {
				n.proposals.delete(e.index);
				if (opId === cmd.op) this.respond(opId, cmd.value);
			}
		}
		for (const rs of rd.readStates) {
			const op = n.reads.get(rs.ctx);
			if (op === undefined) continue;
			n.reads.delete(rs.ctx);
			n.readyReads.push({ index: rs.index, op });
		}
		for (const ctx of rd.droppedReads) n.reads.delete(ctx);
	}

	private answerReads(n: Node): void {
		if (n.readyReads.length === 0 || !n.core) return;
		const applied = n.core.log.applied;
		n.readyReads = n.readyReads.filter((r) => {
			if (r.index > applied) return true;
			const op = this.history.find((h) => h.id === r.op);
			if (op) this.respond(op.id, n.kv.get(op.key) ?? "");
			return false;
		});
	}

	private maybeSnapshot(n: Node): void {
		const core = n.core!;
		const since = core.log.applied - (n.disk.snapshot?.meta.index ?? 0);
		if (since < this.o.snapshotEvery) return;
		const index = core.log.applied;
		const at = core.configurationAt(index);
		const meta: SnapshotMeta = {
			id: `${n.id}-${index}`,
			index,
			term: core.log.term(index)!,
			configuration: at.config,
			configurationIndex: at.index,
			size: 0,
		};
		n.disk.snapshot = { meta, data: pack([...n.kv]) };
		core.compact(meta, 5);
		n.disk.entries = n.disk.entries.filter((e) => e.index > core.log.snapshotIndex);
		this.stats.snapshots++;
	}

	// --- membership ---------------------------------------------------------------------------

	/** Now and then the leader changes one server or hands leadership over, as an operator would. */
	private changeMembership(): void {
		const r = this.rng;
		if (!r.chance(0.0015)) return;
		const l = this.leader();
		const core = l?.core;
		if (!l || !core) return;
		const cfg = core.configuration();
		const voterIds = cfg.servers.filter((s) => s.suffrage === "voter").map((s) => s.id);
		if (r.chance(0.25)) {
			const to = voterIds.filter((id) => id !== l.id);
			if (to.length === 0) return;
			try {
				core.transferLeadership(r.pick(to));
				this.stats.transfers++;
			} catch {}
			this.process(l);
			return;
		}
		if (!core.canChangeConfiguration()) return;
		const nonvoters = cfg.servers.filter((s) => s.suffrage === "nonvoter").map((s) => s.id);
		const outside = this.nodes.map((n) => n.id).filter((id) => !cfg.servers.some((s) => s.id === id));
		const minVoters = Math.max(2, this.o.nodes - 1);
		const maxVoters = this.o.nodes + 1;
		const server = (id: string, suffrage: "voter" | "nonvoter") => ({ id, address: id, suffrage });
		const options: Array<() => Configuration> = [];
		if (outside.length > 0) options.push(() => withServer(cfg, server(r.pick(outside), "nonvoter")));
		if (outside.length > 0 && voterIds.length < maxVoters)
			options.push(() => withServer(cfg, server(r.pick(outside), "voter")));
		if (nonvoters.length > 0 && voterIds.length < maxVoters)
			options.push(() => withServer(cfg, server(r.pick(nonvoters), "voter")));
		if (nonvoters.length > 0) options.push(() => withoutServer(cfg, r.pick(nonvoters)));
		if (voterIds.length > minVoters) {
			options.push(() => withoutServer(cfg, r.pick(voterIds)));
			options.push(() => withServer(cfg, server(r.pick(voterIds), "nonvoter")));
		}
		if (options.length === 0) return;
		const next = r.pick(options)();
		try {
			core.proposeConfiguration(next);
			this.stats.configChanges++;
		} catch {
			return; // e.g. a transfer in progress: refused, nothing happened
		}
		this.process(l);
	}

	// --- clients ------------------------------------------------------------------------------

	private clients(chaos: boolean): void {
		for (let c = 0; c < this.o.clients; c++) {
			const busy = this.clientBusy.get(c);
			if (busy && !busy.done && this.now >= busy.deadline) {
				// No answer in time: the outcome is unknown (the op may still take effect).
				busy.done = true;
				this.clientBusy.delete(c);
			}
			if (this.clientBusy.has(c) || !this.rng.chance(chaos ? 0.02 : 0.005)) continue;
			this.invoke(c);
		}
	}

	private invoke(client: number): void {
		const target = this.leader() ?? this.rng.pick(this.nodes);
		const key = `k${this.rng.int(1, this.o.keys)}`;
		const kind = this.rng.chance(0.5) ? "put" : "get";
		const id = this.nextOpId++;
		const op: ClientOp = {
			id,
			client,
			key,
			kind,
			value: kind === "put" ? `v${id}` : "",
			call: this.now,
			ret: Number.POSITIVE_INFINITY,
			node: target.id,
			deadline: this.now + 400,
			done: false,
		};
		const core = target.core;
		if (core?.role !== "leader") return; // refused at once: never happened
		try {
			if (kind === "put") {
				const [e] = core.propose([{ type: "command", data: pack({ op: id, key, value: op.value }) }]);
				target.proposals.set(e!.index, id);
			} else {
				target.reads.set(id, id);
				core.readIndex(id);
			}
		} catch {
			return; // e.g. a leadership transfer: refused, never happened
		}
		this.history.push(op);
		this.clientBusy.set(client, op);
		this.process(target);
	}

	private respond(opId: number, value: string): void {
		const op = this.history.find((h) => h.id === opId);
		if (!op || op.done) return;
		op.done = true;
		op.ret = this.now;
		if (op.kind === "get") op.value = value;
		this.clientBusy.delete(op.client);
	}

	// --- invariants ---------------------------------------------------------------------------

	private onNewLeader(n: Node): void {
		this.stats.elections++;
		const core = n.core!;
		// Leader completeness: every entry anyone applied is in the new leader's log.
		for (const [index, key] of this.appliedLog) {
			if (index <= core.log.snapshotIndex) continue;
			const e = core.log.entry(index);
			const mine = e ? `${e.term}:${Buffer.from(e.data).toString("base64")}` : undefined;
			if (mine !== key)
				throw new InvariantError(
					`leader completeness: leader ${n.id} (term ${core.term}) lacks applied entry ${index}`,
				);
		}
		n.leaderLog = new Map();
	}

	/** A node's configuration is that of the last config entry in its log, committed or not. */
	private checkConfiguration(n: Node): void {
		const core = n.core;
		if (!core) return;
		const log = core.log;
		let want = log.snapshotIndex > 0 ? (n.disk.snapshot?.meta.configurationIndex ?? -1) : 0;
		for (let i = log.lastIndex(); i > log.snapshotIndex; i--) {
			if (log.entry(i)!.type === "configuration") {
				want = i;
				break;
			}
		}
		if (want >= 0 && core.configurationIndex() !== want)
			throw new InvariantError(
				`configuration: ${n.id} uses the config of entry ${core.configurationIndex()}, its log's last is ${want}`,
			);
	}

	private checkElectionSafety(n: Node): void {
		const core = n.core;
		if (core?.role !== "leader") return;
		const other = this.leadersByTerm.get(core.term);
		if (other && other !== n.id)
			throw new InvariantError(`election safety: ${other} and ${n.id} both lead term ${core.term}`);
		this.leadersByTerm.set(core.term, n.id);
	}

	/**
	 * Leader append-only, checked after every step of a leader: entries it holds are never changed
	 * or removed while it leads (compaction into a snapshot aside).
	 */
	private checkLeaderAppendOnly(n: Node): void {
		const core = n.core;
		if (core?.role !== "leader" || !n.leaderLog) return;
		const log = core.log;
		for (const [index, term] of n.leaderLog) {
			if (index <= log.snapshotIndex) {
				n.leaderLog.delete(index);
				continue;
			}
			if (log.term(index) !== term) throw new InvariantError(`leader append-only: ${n.id} changed entry ${index}`);
		}
		for (let i = Math.max(log.firstIndex(), 1); i <= log.lastIndex(); i++) n.leaderLog.set(i, log.term(i)!);
	}

	/**
	 * Log matching among all the given nodes, over every index both hold: if two logs have an entry
	 * with the same index and term, the entries are identical and so is everything before them.
	 */
	private checkLogMatching(nodes: Node[]): void {
		for (const a of nodes) {
			for (const b of nodes) {
				if (a.id >= b.id) continue;
				const la = a.core!.log;
				const lb = b.core!.log;
				const lo = Math.max(la.firstIndex(), lb.firstIndex());
				const hi = Math.min(la.lastIndex(), lb.lastIndex());
				let matched = false;
				for (let i = hi; i >= lo; i--) {
					const ea = la.entry(i)!;
					const eb = lb.entry(i)!;
					const same = ea.term === eb.term;
					const differ = Buffer.compare(ea.data, eb.data) !== 0 || ea.type !== eb.type;
					if (matched && (!same || differ))
						throw new InvariantError(`log matching: ${a.id}/${b.id} agree after ${i} but not at ${i}`);
					if (same) {
						if (differ)
							throw new InvariantError(`log matching: ${a.id}/${b.id} hold different entries ${i}@${ea.term}`);
						matched = true;
					}
				}
			}
		}
	}

	private finalChecks(): void {
		const live = this.nodes.filter((n) => n.core);
		this.checkLogMatching(live);
		// Convergence: after the calm phase every member (voter or not) applied the same prefix.
		const leader = this.leader();
		if (!leader) throw new InvariantError("no leader after the calm phase");
		const members = leader.core!.configuration();
		const applied = live.filter((n) => members.servers.some((s) => s.id === n.id)).map((n) => n.core!.log.applied);
		if (Math.min(...applied) < leader.core!.log.committed) {
			throw new InvariantError(
				`not converged after the calm phase: applied ${applied.join(",")}, commit ${leader.core!.log.committed}`,
			);
		}
		// No acknowledged write lost: each acknowledged put is in the applied log.
		const appliedOps = new Set<number>();
		for (const key of this.appliedLog.values()) {
			const data = Buffer.from(key.slice(key.indexOf(":") + 1), "base64");
			if (data.length === 0) continue;
			try {
				const cmd = unpack(data) as { op?: number };
				if (typeof cmd?.op === "number") appliedOps.add(cmd.op);
			} catch {}
		}
		for (const op of this.history) {
			if (op.kind === "put" && op.ret !== Number.POSITIVE_INFINITY && !appliedOps.has(op.id)) {
				throw new InvariantError(`acknowledged write ${op.id} (${op.key}=${op.value}) was lost`);
			}
		}
	}
}
