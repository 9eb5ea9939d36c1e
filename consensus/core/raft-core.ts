// The Raft algorithm as a deterministic state machine (after etcd-io/raft): no clocks, sockets or
// disks. Inputs are tick(), step(message) and propose*(); outputs come out as a Ready batch.
// Implements elections with pre-vote and check-quorum, log replication with flow control and
// term-based conflict back-off, single-server membership changes with voters and non-voters,
// leadership transfer, snapshots with InstallSnapshot, and ReadIndex for linearizable reads.
import {
	ConfigChangePendingError,
	LeadershipTransferInProgressError,
	NotLeaderError,
	RaftError,
	UnknownServerError,
} from "../errors.ts";
import type { Configuration, LogEntry, LogType, SnapshotMeta } from "../storage/types.ts";
import {
	decodeConfiguration,
	encodeConfiguration,
	hasServer,
	isVoter,
	quorum,
	validateConfiguration,
	voters,
} from "./configuration.ts";
import { RaftLog } from "./log.ts";
import type {
	AppendRequest,
	AppendResponse,
	Heartbeat,
	Message,
	ServerInfo,
	ServerQuery,
	SnapshotRequest,
	VoteRequest,
	VoteResponse,
} from "./messages.ts";
import { Progress } from "./progress.ts";
import type { HardState, ReadState, Ready, RoleName, SoftState } from "./ready.ts";

export interface CoreConfig {
	id: string;
	/** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
	electionTicks: number;
	/** Ticks between leader heartbeats; must be well below electionTicks. */
	heartbeatTicks: number;
	preVote: boolean;
	checkQuorum: boolean;
	maxEntriesPerAppend: number;
	maxBytesPerAppend: number;
	/** Appends a leader may have in flight to one follower before waiting for acks. */
	maxInflight: number;
	/** Uniform random in [0, 1); seeded in simulations. */
	random: () => number;
	/** Called for each message refused because its sender may not talk to us (see admits()). */
	onRefuse?: (m: Message) => void;
}

export const defaultCoreConfig = (id: string, random: () => number = Math.random): CoreConfig => ({
	id,
	electionTicks: 10,
	heartbeatTicks: 1,
	preVote: true,
	checkQuorum: true,
	maxEntriesPerAppend: 512,
	maxBytesPerAppend: 1 << 20,
	maxInflight: 64,
	random,
});

/** What a node recovers from its disk when it starts. */
export interface PersistedState {
	hardState: HardState;
	snapshot?: SnapshotMeta;
	entries: LogEntry[];
}

interface PendingRead {
	ctx: number;
	index: number;
	acks: Set<string>;
}

export class RaftCore {
	readonly id: string;
	private readonly cfg: CoreConfig;
	readonly log = new RaftLog();
	term = 0;
	vote = "";
	role: RoleName = "follower";
	leader = "";
	private configs: Array<{ index: number; config: Configuration }> = [];
	/** Ids of the latest configuration's servers, the only senders admitted (O(1) per message). */
	private members = new Set<string>();
	private membersOf: Configuration | undefined;
	/** Messages refused because their sender is not a server of the latest configuration. */
	refused = 0;
	/**
	 * The highest commit index this term's leader has told us (a follower's own commit may lag
	 * it: after a snapshot install it is the snapshot's index until the next append).
	 */
	private leaderCommit = { term: 0, leader: "", commit: 0 };
	/** Followers found with an empty log below what they had acknowledged (state lost): replicated afresh. */
	progressResets = 0;
	/** Senders a member of ours knows (serverInfo) while our latest configuration does not name them. */
	private vouched = new Set<string>();
	/** Senders asked about (serverQuery) in this round of an election timeout; bounded. */
	private asked = new Set<string>();
	private queryElapsed = 0;
	private latestSnapshot: SnapshotMeta | undefined;
	private progress = new Map<string, Progress>();
	private votes = new Map<string, boolean>();
	private electionElapsed = 0;
	private heartbeatElapsed = 0;
	private randomizedElectionTimeout = 0;
	private transferee = "";
	private transferElapsed = 0;
	private pendingReads: PendingRead[] = [];
	/** Proposals appended since the last ready(): broadcast once then, in one append per follower. */
	private broadcastDue = false;
	private readsAwaitingCommit: number[] = [];

	// Output accumulated until the next ready().
	private msgs: Message[] = [];
	private readStates: ReadState[] = [];
	private droppedReads: number[] = [];
	private pendingSnapshotInstall: { meta: SnapshotMeta; data: Uint8Array } | undefined;
	private prevHard: HardState;
	private prevSoft: SoftState;

	constructor(cfg: CoreConfig, persisted?: PersistedState) {
		if (cfg.heartbeatTicks <= 0 || cfg.electionTicks <= cfg.heartbeatTicks) {
			throw new RaftError("electionTicks must exceed heartbeatTicks > 0", "ERR_BAD_CONFIG");
		}
		this.cfg = cfg;
		this.id = cfg.id;
		if (persisted) this.load(persisted);
		this.prevHard = this.hardState();
		this.prevSoft = this.softState();
		this.resetElectionTimer();
	}

	private load(p: PersistedState): void {
		const snap = p.snapshot;
		this.log.load(snap?.index ?? 0, snap?.term ?? 0, p.entries, p.hardState.commit);
		this.term = p.hardState.term;
		this.vote = p.hardState.vote;
		this.latestSnapshot = snap;
		this.configs = snap ? [{ index: snap.configurationIndex, config: snap.configuration }] : [];
		for (const e of p.entries) if (e.type === "configuration" && e.index > (snap?.index ?? 0)) this.noteConfig(e);
		this.refreshMembers();
	}

	// --- configuration -------------------------------------------------------------------------

	configuration(): Configuration {
		return this.configs[this.configs.length - 1]?.config ?? { servers: [] };
	}

	configurationIndex(): number {
		return this.configs[this.configs.length - 1]?.index ?? 0;
	}

	committedConfigurationIndex(): number {
		return this.configAt(this.log.committed)?.index ?? 0;
	}

	committedConfiguration(): Configuration {
		return this.configAt(this.log.committed)?.config ?? { servers: [] };
	}

	/** The configuration in force at `index` (the last config entry at or before it), for snapshots. */
	configurationAt(index: number): { index: number; config: Configuration } {
		return this.configAt(index) ?? this.configs[0] ?? { index: 0, config: { servers: [] } };
	}

	private configAt(index: number): { index: number; config: Configuration } | undefined {
		for (let i = this.configs.length - 1; i >= 0; i--) if (this.configs[i]!.index <= index) return this.configs[i];
		return undefined;
	}

	private noteConfig(e: LogEntry): void {
		this.configs.push({ index: e.index, config: decodeConfiguration(e.data) });
		this.pruneConfigs();
		this.refreshMembers();
		if (this.role === "leader") this.syncProgress();
	}

	/**
	 * Keep the config in force at the applied index (a snapshot taken there must record it) and
	 * every later one; older ones can never be needed again.
	 */
	private pruneConfigs(): void {
		while (this.configs.length > 1 && this.configs[1]!.index <= this.log.applied) this.configs.shift();
	}

	/** Entries from `index` on were replaced: forget configs they held (only on a real truncation). */
	private dropConfigsFrom(index: number): void {
		while (this.configs.length > 0 && this.configs[this.configs.length - 1]!.index >= index) this.configs.pop();
		this.refreshMembers();
	}

	private refreshMembers(): void {
		const cfg = this.configuration();
		if (cfg === this.membersOf) return;
		this.membersOf = cfg;
		this.members = new Set(cfg.servers.map((s) => s.id));
		// Vouches were for senders the old configuration did not name; the new one may.
		this.vouched.clear();
	}

	/**
	 * Who may send us a message (consensus/README.md, "Who may talk to a server"): a server of the
	 * latest configuration, a sender one of those servers vouched for (serverInfo: our log lags
	 * behind the entry that added it), and anyone while that configuration does not name us
	 * (brand-new with none at all, being added, or removed: the leader adding us, or a candidate
	 * needing our vote, is not known to us yet). For append, heartbeat and snapshot also the
	 * leader we already follow in this term (a leader that removed itself).
	 */
	private admits(m: Message): boolean {
		if (this.members.has(m.from) || !this.members.has(this.id) || this.vouched.has(m.from)) return true;
		const replication = m.type === "append" || m.type === "heartbeat" || m.type === "snapshot";
		return replication && m.from === this.leader && m.term === this.term;
	}

	private refuse(m: Message): void {
		this.refused++;
		this.cfg.onRefuse?.(m);
		// If the sender is real, our log lacks the entry that added it: ask the servers we know,
		// once per sender and election timeout (at most 16 senders). An outsider learns nothing.
		if (this.asked.has(m.from) || this.asked.size >= 16) return;
		this.asked.add(m.from);
		for (const id of this.members) {
			if (id !== this.id) this.send({ type: "serverQuery", term: this.term, from: this.id, to: id, about: m.from });
		}
	}

	/**
	 * `about` is known if our latest configuration names it (also while it no longer names us: a
	 * removed server still knows who replaced it), or if we follow it while named ourselves.
	 */
	private answerServerQuery(m: ServerQuery): void {
		const known = this.members.has(m.about) || (m.about === this.leader && this.members.has(this.id));
		this.send({ type: "serverInfo", term: this.term, from: this.id, to: m.from, about: m.about, known });
	}

	private noteServerInfo(m: ServerInfo): void {
		if (m.known) this.vouched.add(m.about);
	}

	private promotable(): boolean {
		return isVoter(this.configuration(), this.id);
	}

	private syncProgress(): void {
		const cfg = this.configuration();
		for (const s of cfg.servers) {
			if (s.id !== this.id && !this.progress.has(s.id)) {
				const p = new Progress(this.log.lastIndex() + 1);
				p.recentActive = true;
				this.progress.set(s.id, p);
			}
		}
		for (const id of [...this.progress.keys()]) if (!hasServer(cfg, id)) this.progress.delete(id);
	}

	// --- state ---------------------------------------------------------------------------------

	hardState(): HardState {
		return { term: this.term, vote: this.vote, commit: this.log.committed };
	}

	softState(): SoftState {
		return { role: this.role, leader: this.leader };
	}

	status() {
		return {
			id: this.id,
			role: this.role,
			term: this.term,
			leader: this.leader,
			commit: this.log.committed,
			/** What the leader has committed, as far as this server knows (the leader: its own). */
			leaderCommit: this.knownLeaderCommit(),
			applied: this.log.applied,
			lastIndex: this.log.lastIndex(),
			firstIndex: this.log.firstIndex(),
			configuration: this.configuration(),
			/** Messages refused because their sender is not a server of the latest configuration. */
			refused: this.refused,
			progressResets: this.progressResets,
			progress: Object.fromEntries(
				[...this.progress].map(([id, p]) => [id, { match: p.match, next: p.next, state: p.state }]),
			),
		};
	}

	private knownLeaderCommit(): number {
		const c = this.leaderCommit;
		const current = this.role !== "leader" && c.term === this.term && c.leader === this.leader && this.leader !== "";
		return Math.max(this.log.committed, current ? c.commit : 0);
	}

	/** An append or heartbeat of this term's leader: what it has committed (a lower bound). */
	private noteLeaderCommit(m: { term: number; from: string; commit: number }): void {
		const c = this.leaderCommit;
		if (c.term !== m.term || c.leader !== m.from)
			this.leaderCommit = { term: m.term, leader: m.from, commit: m.commit };
		else c.commit = Math.max(c.commit, m.commit);
	}

	private resetElectionTimer(): void {
		this.electionElapsed = 0;
		this.randomizedElectionTimeout = this.cfg.electionTicks + Math.floor(this.cfg.random() * this.cfg.electionTicks);
	}

	private send(m: Message): void {
		this.msgs.push(m);
	}

	private becomeFollower(term: number, leader: string): void {
		if (term !== this.term) {
			this.term = term;
			this.vote = "";
		}
		if (this.role === "leader") this.dropPendingReads();
		this.role = "follower";
		this.leader = leader;
		this.transferee = "";
		this.votes.clear();
		this.resetElectionTimer();
	}

	private dropPendingReads(): void {
		for (const r of this.pendingReads) this.droppedReads.push(r.ctx);
		this.droppedReads.push(...this.readsAwaitingCommit);
		this.pendingReads = [];
		this.readsAwaitingCommit = [];
	}

	private becomeLeader(): void {
		this.role = "leader";
		this.leader = this.id;
		this.transferee = "";
		this.heartbeatElapsed = 0;
		this.progress.clear();
		this.syncProgress();
		for (const p of this.progress.values()) p.recentActive = true;
		// A leader may only commit entries of its own term: an empty one starts that at once.
		this.appendEntries([{ type: "noop", data: new Uint8Array() }]);
		this.bcastAppend();
	}

	// --- elections -----------------------------------------------------------------------------

	/** Start an election now (tests, bootstrap of a single node). */
	campaign(transfer = false): void {
		if (!this.promotable() || this.role === "leader") return;
		if (this.cfg.preVote && !transfer) this.startElection(true, false);
		else this.startElection(false, transfer);
	}

	private startElection(pre: boolean, transfer: boolean): void {
		const term = pre ? this.term + 1 : this.term + 1;
		if (pre) {
			this.role = "precandidate";
			this.leader = "";
		} else {
			this.becomeFollower(term, "");
			this.role = "candidate";
			this.vote = this.id;
		}
		this.votes.clear();
		this.votes.set(this.id, true);
		this.resetElectionTimer();
		if (this.tally() === "won") {
			if (pre) this.startElection(false, false);
			else this.becomeLeader();
			return;
		}
		for (const id of voters(this.configuration())) {
			if (id === this.id) continue;
			this.send({
				type: "vote",
				pre,
				transfer,
				term,
				from: this.id,
				to: id,
				lastIndex: this.log.lastIndex(),
				lastTerm: this.log.lastTerm(),
			});
		}
	}

	private tally(): "won" | "lost" | "pending" {
		const vs = voters(this.configuration());
		let granted = 0;
		let rejected = 0;
		for (const id of vs) {
			const v = this.votes.get(id);
			if (v === true) granted++;
			else if (v === false) rejected++;
		}
		const q = quorum(this.configuration());
		if (granted >= q) return "won";
		if (rejected > vs.length - q) return "lost";
		return "pending";
	}

	/** A leader is known and was heard from within the election timeout: refuse to help depose it. */
	private inLease(): boolean {
		return this.cfg.checkQuorum && this.leader !== "" && this.electionElapsed < this.cfg.electionTicks;
	}

	private handleVote(m: VoteRequest): void {
		const canVote = this.vote === m.from || (this.vote === "" && this.leader === "") || (m.pre && m.term > this.term);
		const grant = canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm);
		if (grant && !m.pre) {
			this.vote = m.from;
			this.electionElapsed = 0;
		}
		// A granted pre-vote answers in the requested term; a refusal carries ours so the asker can catch up.
		this.send({
			type: "voteResp",
			pre: m.pre,
			granted: grant,
			term: grant ? m.term : this.term,
			from: this.id,
			to: m.from,
		});
	}

	private handleVoteResp(m: VoteResponse): void {
		if ((m.pre && this.role !== "precandidate") || (!m.pre && this.role !== "candidate")) return;
		if (!isVoter(this.configuration(), m.from)) return;
		this.votes.set(m.from, m.granted);
		const result = this.tally();
		if (result === "won") {
			if (m.pre) this.startElection(false, false);
			else this.becomeLeader();
		} else if (result === "lost") {
			this.becomeFollower(this.term, "");
		}
	}

	// --- ticking -------------------------------------------------------------------------------

	tick(): void {
		if (++this.queryElapsed >= this.cfg.electionTicks) {
			this.queryElapsed = 0;
			this.asked.clear();
		}
		if (this.role === "leader") this.tickLeader();
		else this.tickElection();
	}

	private tickElection(): void {
		this.electionElapsed++;
		if (this.electionElapsed >= this.randomizedElectionTimeout && this.promotable()) {
			this.resetElectionTimer();
			this.campaign();
		}
	}

	private tickLeader(): void {
		this.heartbeatElapsed++;
		this.electionElapsed++;
		if (this.transferee) {
			this.transferElapsed++;
			if (this.transferElapsed >= this.cfg.electionTicks) this.transferee = ""; // gave up
		}
		if (this.electionElapsed >= this.cfg.electionTicks) {
			this.electionElapsed = 0;
			if (this.cfg.checkQuorum) {
				const active = voters(this.configuration()).filter(
					(id) => id === this.id || this.progress.get(id)?.recentActive,
				).length;
				for (const p of this.progress.values()) p.recentActive = false;
				if (active < quorum(this.configuration())) {
					this.becomeFollower(this.term, "");
					return;
				}
			}
		}
		for (const pr of this.progress.values()) {
			// A snapshot not acknowledged within an election timeout was probably lost: send it again.
			if (pr.state === "snapshot" && ++pr.snapshotElapsed >= this.cfg.electionTicks) pr.retrySnapshot();
		}
		if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
			this.heartbeatElapsed = 0;
			this.bcastHeartbeat(0);
		}
	}

	// --- the message entry point ---------------------------------------------------------------

	step(m: Message): void {
		if (m.to !== this.id) return;
		if (!this.admits(m)) {
			// Before any term logic: a non-member's higher term must depose nobody and commit nothing.
			this.refuse(m);
			return;
		}
		// Outside the term logic: they only say whom a server knows.
		if (m.type === "serverQuery") {
			this.answerServerQuery(m);
			return;
		}
		if (m.type === "serverInfo") {
			this.noteServerInfo(m);
			return;
		}
		if (m.term > this.term) {
			if (m.type === "vote") {
				if (!m.transfer && this.inLease()) return; // a live leader exists: ignore the disruptor
				if (m.pre) {
					this.handleVote(m);
					return;
				}
				this.becomeFollower(m.term, "");
			} else if (m.type === "voteResp" && m.pre && m.granted) {
				// our own pre-vote round: the term is not ours yet
			} else {
				const leader = m.type === "append" || m.type === "heartbeat" || m.type === "snapshot" ? m.from : "";
				this.becomeFollower(m.term, leader);
			}
		} else if (m.term < this.term) {
			if ((m.type === "append" || m.type === "heartbeat") && (this.cfg.checkQuorum || this.cfg.preVote)) {
				// Tell a stale leader our term so it steps down (it may be cut off from the others).
				this.send({
					type: "appendResp",
					term: this.term,
					from: this.id,
					to: m.from,
					success: false,
					index: 0,
					hintIndex: 0,
					hintTerm: 0,
				});
			} else if (m.type === "vote" && m.pre) {
				this.send({ type: "voteResp", pre: true, granted: false, term: this.term, from: this.id, to: m.from });
			}
			return;
		}
		switch (m.type) {
			case "vote":
				this.handleVote(m);
				return;
			case "voteResp":
				this.handleVoteResp(m);
				return;
			default:
				break;
		}
		if (this.role === "leader") this.stepLeader(m);
		else this.stepFollower(m);
	}

	private stepFollower(m: Message): void {
		switch (m.type) {
			case "append":
				if (this.role !== "follower") this.becomeFollower(m.term, m.from);
				this.electionElapsed = 0;
				this.leader = m.from;
				this.handleAppend(m);
				return;
			case "heartbeat":
				if (this.role !== "follower") this.becomeFollower(m.term, m.from);
				this.electionElapsed = 0;
				this.leader = m.from;
				this.handleHeartbeat(m);
				return;
			case "snapshot":
				if (this.role !== "follower") this.becomeFollower(m.term, m.from);
				this.electionElapsed = 0;
				this.leader = m.from;
				this.handleSnapshot(m);
				return;
			case "timeoutNow":
				if (this.promotable()) this.campaign(true);
				return;
			default:
				return;
		}
	}

	private handleAppend(m: AppendRequest): void {
		this.noteLeaderCommit(m);
		const reply = (success: boolean, index: number, hintIndex = 0, hintTerm = 0) =>
			this.send({
				type: "appendResp",
				term: this.term,
				from: this.id,
				to: m.from,
				success,
				index,
				hintIndex,
				hintTerm,
			});
		if (m.prevIndex < this.log.committed) {
			reply(true, this.log.committed);
			return;
		}
		const t = this.log.term(m.prevIndex);
		if (t === m.prevTerm) {
			// The configuration is always that of the last config entry in the log, committed or not.
			// Only entries this append really wrote (from `from` on) can change it: a stale or
			// duplicated append whose entries all match must leave later config entries alone.
			const { last, from } = this.log.appendFromLeader(m.entries);
			if (from > 0) {
				this.dropConfigsFrom(from);
				for (const e of m.entries) if (e.index >= from && e.type === "configuration") this.noteConfig(e);
			}
			this.log.commitTo(Math.min(m.commit, last));
			reply(true, last);
			return;
		}
		// Mismatch: point the leader at the last index whose term is <= prevTerm, skipping a whole
		// conflicting term per round trip instead of one entry.
		const hintIndex = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
		reply(false, m.prevIndex, hintIndex, this.log.term(hintIndex) ?? 0);
	}

	private handleHeartbeat(m: Heartbeat): void {
		this.noteLeaderCommit(m);
		this.log.commitTo(m.commit);
		this.send({ type: "heartbeatResp", term: this.term, from: this.id, to: m.from, ctx: m.ctx });
	}

	private handleSnapshot(m: SnapshotRequest): void {
		const meta = m.meta;
		const reply = (index: number) =>
			this.send({
				type: "appendResp",
				term: this.term,
				from: this.id,
				to: m.from,
				success: true,
				index,
				hintIndex: 0,
				hintTerm: 0,
			});
		if (meta.index <= this.log.committed) {
			reply(this.log.committed);
			return;
		}
		if (this.log.term(meta.index) === meta.term) {
			// We already have the snapshot's last entry: just move the commit.
			this.log.commitTo(meta.index);
			reply(meta.index);
			return;
		}
		if (!m.data) throw new RaftError("snapshot message without data", "ERR_INVALID_MESSAGE");
		this.log.restore(meta.index, meta.term);
		this.configs = [{ index: meta.configurationIndex, config: meta.configuration }];
		this.refreshMembers();
		this.latestSnapshot = meta;
		this.pendingSnapshotInstall = { meta, data: m.data };
		reply(meta.index);
	}

	// --- leader --------------------------------------------------------------------------------

	private stepLeader(m: Message): void {
		const pr = this.progress.get(m.from);
		if (!pr) return;
		pr.recentActive = true;
		switch (m.type) {
			case "appendResp":
				this.handleAppendResp(m, pr);
				return;
			case "heartbeatResp":
				pr.probeSent = false;
				// Appends in flight may have been lost: let one more through so replication resumes.
				if (pr.state === "replicate" && pr.isPaused(this.cfg.maxInflight)) pr.inflight.shift();
				if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
				if (m.ctx > 0) this.ackRead(m.from, m.ctx);
				return;
			default:
				return;
		}
	}

	private handleAppendResp(m: AppendResponse, pr: Progress): void {
		if (!m.success) {
			if (m.index === 0 && m.hintIndex === 0) return; // a stale-term notice: handled by term logic
			if (m.hintIndex === 0 && m.hintTerm === 0 && pr.match > 0) {
				// Its log is empty, yet it acknowledged entries: its state was lost (a replica deleted
				// and started again under the same id). Without this the leader would probe just past
				// the old match forever; lowering a match is always safe (the commit never goes back).
				this.progressResets++;
				pr.match = 0;
				pr.becomeProbe();
				pr.next = 1;
				this.sendAppend(m.from);
				return;
			}
			// Ignore stale rejections: for appends at or below the known match, or (probing) not the
			// one probe we have out.
			if (m.index <= pr.match || (pr.state === "probe" && m.index !== pr.next - 1)) return;
			const probe = m.hintTerm > 0 ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm) : m.hintIndex;
			pr.becomeProbe();
			pr.next = Math.max(Math.min(m.index, probe + 1), pr.match + 1);
			this.sendAppend(m.from);
			return;
		}
		const wasPaused = pr.isPaused(this.cfg.maxInflight);
		if (pr.maybeUpdate(m.index)) {
			if (pr.state === "probe" || (pr.state === "snapshot" && pr.match >= pr.pendingSnapshot)) pr.becomeReplicate();
			if (this.maybeCommit()) this.bcastCommit();
			// Only when there are entries it has not been sent (as etcd's maybeSendAppend with
			// sendIfEmpty=false): an acknowledgement arriving while the next entry is already in
			// flight would otherwise cost an empty append and its acknowledgement.
			else if (pr.next <= this.log.lastIndex()) this.sendAppend(m.from);
			if (m.from === this.transferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
		} else if (wasPaused && !pr.isPaused(this.cfg.maxInflight)) {
			this.sendAppend(m.from);
		}
	}

	private maybeCommit(): boolean {
		const cfg = this.configuration();
		const matches = voters(cfg)
			// The leader counts itself only up to what it has persisted: it sends appends while its
			// own write is in flight, and an entry is committed only once a quorum holds it durably.
			.map((id) => (id === this.id ? this.log.stableIndex : (this.progress.get(id)?.match ?? 0)))
			.sort((a, b) => b - a);
		const candidate = matches[quorum(cfg) - 1] ?? 0;
		// Only entries of the current term are committed by counting (Raft §5.4.2).
		if (candidate > this.log.committed && this.log.term(candidate) === this.term) {
			this.log.commitTo(candidate);
			this.onCommitAdvanced();
			return true;
		}
		return false;
	}

	private onCommitAdvanced(): void {
		if (this.readsAwaitingCommit.length > 0 && this.log.term(this.log.committed) === this.term) {
			const waiting = this.readsAwaitingCommit;
			this.readsAwaitingCommit = [];
			for (const ctx of waiting) this.startRead(ctx);
		}
		// A leader that removed itself (or demoted itself) steps down once that is committed.
		const committed = this.committedConfiguration();
		if (
			committed.servers.length > 0 &&
			!isVoter(committed, this.id) &&
			this.configurationIndex() <= this.log.committed
		) {
			this.becomeFollower(this.term, "");
		}
	}

	private sendAppend(to: string): void {
		const pr = this.progress.get(to);
		if (!pr || pr.isPaused(this.cfg.maxInflight)) return;
		const prevIndex = pr.next - 1;
		const prevTerm = this.log.term(prevIndex);
		if (prevTerm === undefined) {
			// The follower needs entries we compacted: send the snapshot instead.
			const snap = this.latestSnapshot;
			if (!snap) return;
			pr.becomeSnapshot(snap.index);
			this.send({ type: "snapshot", term: this.term, from: this.id, to, meta: snap });
			return;
		}
		const entries = this.log.slice(
			pr.next,
			this.log.lastIndex(),
			this.cfg.maxEntriesPerAppend,
			this.cfg.maxBytesPerAppend,
		);
		this.send({
			type: "append",
			term: this.term,
			from: this.id,
			to,
			prevIndex,
			prevTerm,
			entries,
			commit: this.log.committed,
		});
		if (pr.state === "replicate" && entries.length > 0) {
			const last = entries[entries.length - 1]!.index;
			pr.next = last + 1;
			pr.inflight.push(last);
		} else if (pr.state === "probe") {
			pr.probeSent = true;
		}
	}

	private bcastAppend(): void {
		for (const id of this.progress.keys()) this.sendAppend(id);
	}

	/**
	 * After the commit moved: followers with entries still to receive get them (the append carries
	 * the commit). Up-to-date followers learn the commit from the next append or heartbeat; an
	 * empty append (and its acknowledgement) for each commit would double the messages per write.
	 */
	private bcastCommit(): void {
		for (const [id, pr] of this.progress) if (pr.next <= this.log.lastIndex()) this.sendAppend(id);
	}

	private bcastHeartbeat(ctx: number): void {
		for (const [id, pr] of this.progress) {
			this.send({
				type: "heartbeat",
				term: this.term,
				from: this.id,
				to: id,
				commit: Math.min(pr.match, this.log.committed),
				ctx,
			});
		}
	}

	private sendTimeoutNow(to: string): void {
		this.send({ type: "timeoutNow", term: this.term, from: this.id, to });
	}

	private appendEntries(items: Array<{ type: LogType; data: Uint8Array }>): LogEntry[] {
		const out: LogEntry[] = [];
		let index = this.log.lastIndex();
		for (const it of items) out.push({ index: ++index, term: this.term, type: it.type, data: it.data });
		this.log.appendNew(out);
		for (const e of out) if (e.type === "configuration") this.noteConfig(e);
		// A single voter commits on its own.
		this.maybeCommit();
		return out;
	}

	// --- proposals -----------------------------------------------------------------------------

	private requireLeader(): void {
		if (this.role !== "leader") throw new NotLeaderError(this.leader || undefined);
		if (this.transferee) throw new LeadershipTransferInProgressError();
	}

	/** Append entries (commands, barriers) as leader; returns them with their index and term. */
	propose(items: Array<{ type: LogType; data: Uint8Array }>): LogEntry[] {
		this.requireLeader();
		for (const it of items) {
			if (it.type === "configuration") throw new RaftError("use proposeConfiguration", "ERR_BAD_PROPOSAL");
		}
		const out = this.appendEntries(items);
		// Not sent at once: every proposal made before the shell's next ready() shares one append
		// per follower (far fewer messages, frames and syscalls under load, same latency when idle).
		this.broadcastDue = true;
		return out;
	}

	/** True when a membership change may be proposed now (see proposeConfiguration). */
	canChangeConfiguration(): boolean {
		return (
			this.role === "leader" &&
			this.configurationIndex() <= this.log.committed &&
			this.log.term(this.log.committed) === this.term
		);
	}

	/**
	 * A single-server membership change. Refused while another one is uncommitted, and until this
	 * leader committed an entry of its own term: otherwise a change it proposes could overlap an
	 * uncommitted change of a previous leader and break the single-server invariant (Ongaro's
	 * fix to single-server changes, raft-dev 2015).
	 */
	proposeConfiguration(next: Configuration): LogEntry {
		this.requireLeader();
		if (this.configurationIndex() > this.log.committed) throw new ConfigChangePendingError();
		if (this.log.term(this.log.committed) !== this.term) {
			throw new ConfigChangePendingError("this leader has not yet committed an entry of its term");
		}
		const cur = this.configuration();
		validateConfiguration(next);
		const changed = new Set<string>();
		for (const s of next.servers) {
			const old = cur.servers.find((x) => x.id === s.id);
			if (!old || old.suffrage !== s.suffrage || old.address !== s.address) changed.add(s.id);
		}
		for (const s of cur.servers) if (!next.servers.some((x) => x.id === s.id)) changed.add(s.id);
		if (changed.size > 1) throw new RaftError("change one server at a time", "ERR_BAD_CONFIG_CHANGE");
		const [e] = this.appendEntries([{ type: "configuration", data: encodeConfiguration(next) }]);
		this.broadcastDue = true;
		return e!;
	}

	/** ReadIndex: `ctx` (a positive integer) comes back in Ready.readStates once leadership is confirmed. */
	readIndex(ctx: number): void {
		this.requireLeader();
		if (this.log.term(this.log.committed) !== this.term) {
			this.readsAwaitingCommit.push(ctx);
			return;
		}
		this.startRead(ctx);
	}

	private startRead(ctx: number): void {
		const read: PendingRead = { ctx, index: this.log.committed, acks: new Set([this.id]) };
		this.pendingReads.push(read);
		this.ackRead(this.id, ctx);
		if (this.pendingReads.includes(read)) this.bcastHeartbeat(ctx);
	}

	private ackRead(from: string, ctx: number): void {
		const k = this.pendingReads.findIndex((r) => r.ctx === ctx);
		if (k < 0) return;
		const read = this.pendingReads[k]!;
		if (isVoter(this.configuration(), from)) read.acks.add(from);
		const votersAcked = voters(this.configuration()).filter((id) => read.acks.has(id)).length;
		if (votersAcked >= quorum(this.configuration())) {
			// Confirming a later round confirms every earlier one too.
			for (const r of this.pendingReads.splice(0, k + 1)) this.readStates.push({ ctx: r.ctx, index: r.index });
		}
	}

	transferLeadership(to: string): void {
		if (this.role !== "leader") throw new NotLeaderError(this.leader || undefined);
		if (to === this.id) return;
		if (!isVoter(this.configuration(), to)) throw new UnknownServerError(to);
		this.transferee = to;
		this.transferElapsed = 0;
		const pr = this.progress.get(to)!;
		if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
		else this.sendAppend(to);
	}

	/** The shell took a snapshot covering up to meta.index; keep `trailing` entries for slow followers. */
	compact(meta: SnapshotMeta, trailing: number): void {
		if (this.latestSnapshot && meta.index < this.latestSnapshot.index) return; // an older one: nothing to do
		this.latestSnapshot = meta;
		const to = Math.min(meta.index - trailing, this.log.applied);
		if (to > this.log.snapshotIndex) this.log.compact(to);
	}

	// --- Ready ---------------------------------------------------------------------------------

	hasReady(): boolean {
		const hs = this.hardState();
		return (
			this.broadcastDue ||
			this.msgs.length > 0 ||
			this.readStates.length > 0 ||
			this.droppedReads.length > 0 ||
			this.pendingSnapshotInstall !== undefined ||
			this.log.unstable().length > 0 ||
			this.log.committed > this.log.applied ||
			hs.term !== this.prevHard.term ||
			hs.vote !== this.prevHard.vote ||
			hs.commit !== this.prevHard.commit ||
			this.role !== this.prevSoft.role ||
			this.leader !== this.prevSoft.leader
		);
	}

	ready(): Ready {
		if (this.broadcastDue) {
			this.broadcastDue = false;
			if (this.role === "leader") this.bcastAppend();
		}
		const hs = this.hardState();
		const ss = this.softState();
		const rd: Ready = {
			entries: this.log.unstable(),
			committed: this.log.committed > this.log.applied ? this.log.slice(this.log.applied + 1, this.log.committed) : [],
			messages: coalesceAcks(this.msgs),
			readStates: this.readStates,
			droppedReads: this.droppedReads,
		};
		if (hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote || hs.commit !== this.prevHard.commit) {
			rd.hardState = hs;
		}
		if (ss.role !== this.prevSoft.role || ss.leader !== this.prevSoft.leader) rd.softState = ss;
		if (this.pendingSnapshotInstall) rd.snapshot = this.pendingSnapshotInstall;
		this.msgs = [];
		this.readStates = [];
		this.droppedReads = [];
		this.pendingSnapshotInstall = undefined;
		return rd;
	}

	/** The shell did everything `rd` asked. */
	advance(rd: Ready): void {
		if (rd.hardState) this.prevHard = rd.hardState;
		if (rd.softState) this.prevSoft = rd.softState;
		const last = rd.entries[rd.entries.length - 1];
		if (last) {
			this.log.stableTo(last.index, last.term);
			if (this.role === "leader" && this.maybeCommit()) this.bcastCommit();
		}
		const applied = rd.committed[rd.committed.length - 1];
		if (applied && applied.index > this.log.applied) this.log.applied = applied.index;
		if (rd.snapshot && rd.snapshot.meta.index > this.log.applied) this.log.applied = rd.snapshot.meta.index;
		this.pruneConfigs();
	}
}

/**
 * Successful append acknowledgements are cumulative: of several to one leader in one batch, only
 * the last (highest) one says anything; the earlier ones are dropped. Everything else stays, in order.
 */
function coalesceAcks(msgs: Message[]): Message[] {
	let acks = 0;
	for (const m of msgs) if (m.type === "appendResp" && m.success) acks++;
	if (acks < 2) return msgs;
	const last = new Map<string, Message & { type: "appendResp" }>();
	for (const m of msgs) {
		if (m.type !== "appendResp" || !m.success) continue;
		const prev = last.get(m.to);
		if (!prev || prev.term < m.term || (prev.term === m.term && prev.index <= m.index)) last.set(m.to, m);
	}
	return msgs.filter((m) => m.type !== "appendResp" || !m.success || last.get(m.to) === m);
}
