// A manager that leaves first hands its vote away: the leader hands leadership over, then the
// leader takes the leaver out of the Raft configuration and its record becomes a worker's; only
// then does the node leave. The last voter cannot hand its vote to anyone: what leaving it loses.
import type { RaftError } from "../../consensus/index.ts";
import type { ClusterStore, Node, StoredRecord } from "../store/index.ts";
import { VersionConflictError } from "../store/index.ts";
import { LastManagerError, VoteHandoffError } from "./errors.ts";

/** What the cluster loses when its last manager leaves (counted from this replica). */
export interface LostWithLastManager {
	services: number;
	networks: number;
	tasks: number;
	secrets: number;
	configs: number;
	/** The other nodes (but those that left): they keep running their tasks, with no manager to answer them. */
	orphans: Array<{ id: string; hostname: string }>;
}

const voterIds = (store: ClusterStore) =>
	store
		.configuration()
		.servers.filter((s) => s.suffrage === "voter")
		.map((s) => s.id);

/** When this manager is the only voter: what leaving loses. Otherwise undefined (it can hand its vote on). */
export function lostWithLastManager(
	store: ClusterStore,
	hasLeft: (id: string) => boolean = () => false,
): LostWithLastManager | undefined {
	const voters = voterIds(store);
	if (voters.length !== 1 || voters[0] !== store.id) return undefined;
	return {
		services: store.count("services"),
		networks: store.count("networks"),
		tasks: store.count("tasks"),
		secrets: store.count("secrets"),
		configs: store.count("configs"),
		orphans: store
			.list("nodes")
			.filter((n) => n.id !== store.id && !hasLeft(n.id))
			.map((n) => ({ id: n.id, hostname: n.value.hostname })),
	};
}

/** The sentence a user reads: what is lost with the store. */
export function describeLoss(l: LostWithLastManager): string {
	const orphans = l.orphans.length
		? `; the other ${l.orphans.length} node(s) (${l.orphans.map((o) => o.hostname).join(", ")}) are orphaned: they keep their tasks but nothing manages them any more`
		: "";
	return `the cluster state goes with it: ${l.services} service(s), ${l.networks} network(s), ${l.tasks} task(s), ${l.secrets} secret(s), ${l.configs} config(s)${orphans}`;
}

/**
 * On the leader (`raft.leave`): take `id` out of the Raft configuration and make its record a
 * worker's. The leader itself must hand leadership over first; the last voter is refused.
 */
export async function removeLeaver(store: ClusterStore, id: string): Promise<{ index: number; servers: string[] }> {
	const inConfig = store.configuration().servers.some((s) => s.id === id);
	if (id === store.id) throw new VoteHandoffError("the leader must hand its leadership over before it leaves");
	let index = store.appliedIndex();
	if (inConfig) {
		const voters = voterIds(store);
		if (voters.length === 1 && voters[0] === id) throw new LastManagerError("it is the only Raft voter");
		index = await store.removeServer(id);
	}
	for (let attempt = 0; ; attempt++) {
		const cur: StoredRecord<Node> | undefined = store.get("nodes", id);
		if (!cur || cur.value.role === "worker") break;
		try {
			// Pinned to worker: autopilot must not give the vote back to a node on its way out (a
			// new join's record decides its role preference again).
			const value: Node = {
				...cur.value,
				role: "worker",
				desiredRole: "worker",
				roleReason: "left the cluster (tsswarm leave): its vote was handed away",
			};
			({ index } = await store.commit([{ op: "update", table: "nodes", id, version: cur.version, value }]));
			break;
		} catch (err) {
			if (!(err instanceof VersionConflictError) || attempt >= 5) throw err;
			await store.barrier(); // the newer version is committed: read it once it is applied here
		}
	}
	return { index, servers: store.configuration().servers.map((s) => s.id) };
}

/**
 * On the leaving manager: hand leadership over if it leads (to the most up-to-date voter, retried),
 * then ask the leader to remove it (`call` is the leader RPC), and check that the leader's
 * configuration no longer names it. Throws VoteHandoffError when that cannot be done in time.
 */
export async function handOffVote(
	store: ClusterStore,
	call: (kind: string, body: Record<string, unknown>, o: { timeoutMs: number }) => Promise<unknown>,
	o: { timeoutMs: number; log: { info(o: object, m?: string): void } },
): Promise<{ removed: boolean; newLeader?: string }> {
	if (!store.configuration().servers.some((s) => s.id === store.id)) return { removed: false };
	const deadline = Date.now() + o.timeoutMs;
	let newLeader: string | undefined;
	for (let attempt = 1; store.isLeader(); attempt++) {
		// The most up-to-date voters first; a retry tries the next one (the first may be down).
		const peers = store.raftStats().peers;
		const targets = voterIds(store)
			.filter((v) => v !== store.id)
			.sort((a, b) => (peers[b]?.match ?? 0) - (peers[a]?.match ?? 0));
		if (targets.length === 0) throw new LastManagerError("it is the only Raft voter");
		const to = targets[(attempt - 1) % targets.length];
		try {
			newLeader = await store.leadershipTransfer(to, { timeoutMs: Math.max(1, deadline - Date.now()) });
			o.log.info({ to: newLeader }, "leaving: leadership handed over");
		} catch (err) {
			if (attempt >= 3 || Date.now() >= deadline)
				throw new VoteHandoffError(`could not hand leadership over: ${(err as RaftError).message}`);
		}
	}
	let r: { servers?: unknown };
	try {
		r = (await call("raft.leave", {}, { timeoutMs: Math.max(1000, deadline - Date.now()) })) as { servers?: unknown };
	} catch (err) {
		throw new VoteHandoffError(`the leader did not take this node out of the configuration: ${(err as Error).message}`);
	}
	if (!Array.isArray(r?.servers) || r.servers.includes(store.id))
		throw new VoteHandoffError("the leader's configuration still names this node");
	o.log.info({ servers: r.servers }, "leaving: out of the raft configuration");
	return { removed: true, ...(newLeader ? { newLeader } : {}) };
}
