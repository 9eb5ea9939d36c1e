// After `init --force-new-cluster`, the managers it left out still hold the old configuration: two
// of them coming back could elect each other and run a second cluster beside the recovered one.
// The recovered cluster's leader tells each one it sees alive that it is out (a fence).
import { ProtocolVersionError } from "../errors.ts";
import type { Host } from "../host/index.ts";
import type { ClusterStore, StoreLogger } from "../store/index.ts";
import { CLUSTER_ID } from "../store/index.ts";
import { FenceRefusedError } from "./errors.ts";
import type { LeaderComponent } from "./leader.ts";
import { reactiveLoop } from "./leader.ts";
import { onTables } from "./orchestrator/index.ts";
import { MANAGER_PROTOCOL } from "./rpc.ts";

export const FENCE_KIND = "raft.fence";

/** What a fence says: this cluster was recovered at `at` by `by`, without the receiver. */
export interface Fence {
	clusterId: string;
	at: string;
	by: string;
}

/** The recovery's record in the cluster record, written once the recovered server leads. */
export async function recordRecovery(store: ClusterStore, removed: string[]): Promise<void> {
	const cur = store.get("cluster", CLUSTER_ID);
	if (!cur) return;
	const recovery = { at: new Date().toISOString(), by: store.id, removed: removed.slice(0, 64) };
	await store.commit([
		{ op: "update", table: "cluster", id: CLUSTER_ID, version: cur.version, value: { ...cur.value, recovery } },
	]);
}

/**
 * A fence that reached this manager: obeyed when it names this cluster, comes from the server that
 * ran the recovery (the sender is authenticated; the rpc already refused senders outside this
 * replica's configuration), and that recovery is newer than any this replica knows of (of two
 * recoveries, the later one stands). Returns why it is obeyed, or throws why not.
 */
export function checkFence(
	store: Pick<ClusterStore, "get">,
	clusterId: string,
	raw: Record<string, unknown>,
	from: string,
): Fence {
	const f = { clusterId: raw.clusterId, at: raw.at, by: raw.by };
	if (typeof f.clusterId !== "string" || typeof f.at !== "string" || typeof f.by !== "string")
		throw new FenceRefusedError("a fence needs clusterId, at and by strings");
	// The agent's cluster id: the replica may not have applied its cluster record yet (a server
	// that came back alone applies nothing until a leader tells it the commit index).
	if (f.clusterId !== clusterId) throw new FenceRefusedError(`not this cluster (${f.clusterId.slice(0, 64)})`);
	if (f.by !== from)
		throw new FenceRefusedError(`sent by ${from}, not by the server that recovered (${f.by.slice(0, 64)})`);
	const at = Date.parse(f.at);
	if (!Number.isFinite(at) || at > Date.now() + 5 * 60_000)
		throw new FenceRefusedError(`bad recovery time ${f.at.slice(0, 40)}`);
	const own = store.get("cluster", CLUSTER_ID)?.value.recovery;
	if (own && Date.parse(own.at) >= at)
		throw new FenceRefusedError(`this replica knows a recovery as recent (${own.at})`);
	return { clusterId: f.clusterId, at: f.at, by: f.by };
}

/**
 * On the leader: while the cluster record names servers a recovery left out, fence each one that
 * membership sees alive and that is not a Raft server here, every `everyMs` (a fenced node may be
 * pulled back by another left-out server not fenced yet; a worker has no replica and refuses the
 * protocol, which costs one dial).
 */
export class RecoveryFencer implements LeaderComponent {
	readonly name = "fencer";
	private readonly store: ClusterStore;
	private readonly host: Host;
	private readonly members: () => ReadonlyMap<string, string>;
	private readonly log: StoreLogger;
	private readonly everyMs: number;

	constructor(
		store: ClusterStore,
		host: Host,
		members: () => ReadonlyMap<string, string>,
		log: StoreLogger,
		everyMs = 10_000,
	) {
		this.store = store;
		this.host = host;
		this.members = members;
		this.log = log;
		this.everyMs = everyMs;
	}

	run(signal: AbortSignal): Promise<void> {
		const tried = new Map<string, number>();
		return reactiveLoop(
			signal,
			onTables(this.store, ["cluster"]),
			async () => {
				const cluster = this.store.get("cluster", CLUSTER_ID)?.value;
				const r = cluster?.recovery;
				if (!cluster || !r || r.by !== this.store.id) return;
				const servers = new Set(this.store.configuration().servers.map((s) => s.id));
				const members = this.members();
				const now = Date.now();
				const done: string[] = [];
				for (const id of r.removed) {
					if (signal.aborted) return;
					if (servers.has(id)) done.push(id); // in the configuration again: one of ours
					if (servers.has(id) || members.get(id) !== "alive") continue;
					if (now - (tried.get(id) ?? 0) < this.everyMs) continue;
					tried.set(id, now);
					if (await this.fence(id, { clusterId: cluster.clusterId, at: r.at, by: r.by })) done.push(id);
				}
				// Fenced ones leave the list: autopilot may give them a fresh replica now.
				if (done.length > 0 && !signal.aborted) await this.forget(done);
			},
			Math.min(this.everyMs, 2000),
		);
	}

	private async forget(ids: string[]): Promise<void> {
		const cur = this.store.get("cluster", CLUSTER_ID);
		const r = cur?.value.recovery;
		if (!cur || !r) return;
		const recovery = { ...r, removed: r.removed.filter((id) => !ids.includes(id)) };
		await this.store
			.commit([
				{ op: "update", table: "cluster", id: CLUSTER_ID, version: cur.version, value: { ...cur.value, recovery } },
			])
			.catch((err: Error) => this.log.debug({ err: err.message }, "fenced servers not recorded yet"));
	}

	/** True when it holds no old replica any more: it stopped it, or it runs none (a worker). */
	private async fence(id: string, f: Fence): Promise<boolean> {
		try {
			const reply = (await this.host.session(
				id,
				MANAGER_PROTOCOL,
				async (io) => {
					io.send({ kind: FENCE_KIND, body: { ...f } });
					return io.next();
				},
				{ timeoutMs: 3000, hint: this.store.get("nodes", id)?.value.addr },
			)) as { ok?: unknown; error?: { code?: string; message?: string } } | null;
			if (reply && "ok" in reply) {
				this.log.warn(
					{ node: id, recoveredAt: f.at },
					"fenced a server the recovery left out: it stops its old replica",
				);
				return true;
			}
			// Refused: its replica does not count us as a server, or knows a later recovery.
			this.log.info({ node: id, code: reply?.error?.code, err: reply?.error?.message }, "fence not taken");
			return false;
		} catch (err) {
			// A worker serves no manager protocol: it has no replica to fence.
			if (err instanceof ProtocolVersionError) return true;
			this.log.debug({ node: id, err: (err as Error).message }, "could not fence this node yet");
			return false;
		}
	}
}
