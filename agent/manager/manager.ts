// The manager side of an agent: the Raft-replicated store, requests forwarded to the leader, and
// what the leader decides (network allocation, adding managers). Runs on nodes whose role is manager.
import { join } from "node:path";
import type { RecoveryResult } from "../../consensus/index.ts";
import type {
	ConfigInspect,
	ConfigUpdateResponse,
	NetworkInspect,
	SecretInspect,
	SecretUpdateResponse,
} from "../api/index.ts";
import { AgentError, ConflictError } from "../errors.ts";
import type { Host } from "../host/index.ts";
import {
	dataCipher,
	formatUnlockKey,
	type ManagerKeys,
	newKey,
	newManagerKeys,
	writeKeyFile,
} from "../keyring/index.ts";
import type { TaskLogFetcher } from "../logs/index.ts";
import {
	NODES_LIST,
	type NodeDirectory,
	type NodeRecord,
	type NodesListReply,
	parseNodeRecord,
} from "../nodes/index.ts";
import type { Service, ServiceSpec } from "../services/index.ts";
import { ClusterStore, type StoredRecord, type StoreLogger } from "../store/index.ts";
import { AllocatorComponent } from "./allocator/index.ts";
import { type AutolockChange, changeAutolock, followAutolock, sealedUnlockKey, storedUnlockKey } from "./autolock.ts";
import {
	Autopilot,
	type AutopilotOptions,
	type AutopilotSettings,
	autopilotSettings,
	parseAutopilotUpdate,
	updateAutopilot,
} from "./autopilot/index.ts";
import { DispatchEndpoint, Dispatcher } from "./dispatcher/index.ts";
import { NoClusterSecretError } from "./errors.ts";
import { type ClusterEvent, EventLog, parseEventsQuery } from "./events.ts";
import { checkFence, FENCE_KIND, type Fence, RecoveryFencer, recordRecovery } from "./fence.ts";
import { handOffVote, type LostWithLastManager, lostWithLastManager, removeLeaver } from "./handoff.ts";
import { fetchClusterSecret, JoinKeys } from "./joinkeys.ts";
import { type LeaderComponent, LeaderLoops } from "./leader.ts";
import { type LogItem, parseLogsQuery, serviceLogs } from "./logs.ts";
import {
	CLUSTER_ID,
	type ClusterRecord,
	createNetwork,
	findNetwork,
	inspectNetwork,
	removeNetwork,
	validateNetworkSpec,
} from "./networks.ts";
import {
	directoryEntries,
	findNode,
	followNodes,
	inspectNode,
	type NodeInspect,
	type NodesFollower,
	parseNodeUpdate,
	registerNode,
	removeNode,
	setNodeAddr,
	updateNode,
} from "./nodes.ts";
import { Orchestrator, onTables } from "./orchestrator/index.ts";
import { type RecoverySummary, summarizeRecovery } from "./recovery.ts";
import { LeaderRpc } from "./rpc.ts";
import { globalFits, Scheduler } from "./scheduling.ts";
import {
	createFileObject,
	type FileKind,
	fileSource,
	findFileObject,
	inspectConfig,
	inspectSecret,
	removeFileObject,
	updateFileObject,
} from "./secrets.ts";
import {
	createService,
	findService,
	removeService,
	type ServiceRow,
	scaleService,
	serviceRow,
	type TaskRow,
	taskRows,
	validateServiceFields,
} from "./services.ts";
import { rollbackService, Updater, updaterOwns, updateService } from "./updater/index.ts";

export interface ManagerOptions {
	host: Host;
	dataRoot: string;
	clusterId: string;
	logger: StoreLogger;
	/** This node's directory: kept equal to the store's nodes table once the replica has any. */
	directory: NodeDirectory;
	/** Tasks on a node down this long are replaced elsewhere (default 5 s). */
	downGraceMs?: number;
	/** Reads a task's log from the node that runs it (agent/logs), for `service logs`. */
	logs?: TaskLogFetcher;
	/** Autopilot's health thresholds (its settings live in the cluster record). */
	autopilot?: AutopilotOptions;
	/** This manager's keys (agent/keyring): the cluster secret seals store values (secrets, join secrets). */
	keys?: ManagerKeys;
	/** Where `keys` are on disk (DATA/cluster/keys): kept sealed as the cluster's autolock says. */
	keyFile?: string;
	/**
	 * Without `keys`: first ask the other managers for the cluster secret and write the keys here
	 * (a promoted node), so that its Raft files are sealed from their first entry.
	 */
	acquireKeysTo?: string;
	/** The recovered cluster's leader fenced this manager (fence.ts): it must stop its replica. */
	onFenced?: (f: Fence) => void;
}

export interface InitOptions {
	addrPools: string[];
	subnetSize: number;
	/** Seal the managers' keys with an unlock key (tsswarm init --autolock). */
	autolock?: boolean;
}

export class Manager {
	readonly store: ClusterStore;
	private readonly rpc: LeaderRpc;
	private readonly log: StoreLogger;
	private readonly nodes: NodesFollower;
	private unfollowAutolock: () => void;
	private readonly loops: LeaderLoops;
	private readonly eventLog: EventLog;
	private readonly logs: TaskLogFetcher | undefined;
	private readonly host: Host;
	private readonly directory: NodeDirectory;
	/** This manager's keys, when it holds them (the init node; others once given them). */
	private heldKeys: ManagerKeys | undefined;
	/** The join material in the store (sealed with keys.clusterSecret): any manager holding it admits. */
	readonly join: JoinKeys;
	/** Where workers' dispatch sessions land (on every manager; only the leader's dispatcher serves). */
	readonly endpoint: DispatchEndpoint;
	/** Set when this manager started with forceNewCluster: what recovery did. */
	private recovered: RecoveryResult | undefined;

	private constructor(store: ClusterStore, rpc: LeaderRpc, o: ManagerOptions, endpoint: DispatchEndpoint) {
		this.store = store;
		this.rpc = rpc;
		this.log = o.logger;
		this.endpoint = endpoint;
		this.heldKeys = o.keys;
		this.join = new JoinKeys({
			store,
			rpc,
			directory: o.directory,
			clusterId: o.clusterId,
			logger: o.logger,
			keys: () => this.heldKeys,
		});
		this.eventLog = new EventLog(store);
		this.logs = o.logs;
		this.host = o.host;
		this.directory = o.directory;
		const directory = o.directory;
		this.nodes = followNodes(store, directory);
		this.unfollowAutolock = o.keys && o.keyFile ? followAutolock(store, o.keys, o.keyFile, o.logger) : () => {};
		this.loops = new LeaderLoops(store, leaderComponents(store, o, endpoint), o.logger);
		rpc.register("service.create", async (body) => createService(store, body.spec));
		rpc.register("service.scale", async (body) => scaleService(store, String(body.ref ?? ""), body.replicas));
		rpc.register("service.update", async (body) =>
			updateService(store, String(body.ref ?? ""), { spec: body.spec, version: body.version, force: body.force }),
		);
		rpc.register("service.rollback", async (body) =>
			rollbackService(store, String(body.ref ?? ""), { version: body.version }),
		);
		rpc.register("service.rm", async (body) => removeService(store, String(body.ref ?? "")));
		rpc.register("node.register", async (body) => registerNode(store, parseNodeRecord(body.record)));
		rpc.register("node.rm", async (body) => removeNode(store, String(body.id ?? "")));
		rpc.register("node.update", async (body) =>
			updateNode(store, String(body.ref ?? ""), parseNodeUpdate(body.update as Record<string, unknown>)),
		);
		// Any member (workers too) may read the directory, from whichever manager it asks.
		rpc.register(
			NODES_LIST,
			async (body): Promise<NodesListReply> =>
				body.since === directory.version
					? { version: directory.version, unchanged: true }
					: { version: directory.version, nodes: directoryEntries(store) },
			{ members: true, local: true },
		);
		rpc.register("network.create", async (body) =>
			inspectNetwork(await createNetwork(store, validateNetworkSpec(body))),
		);
		rpc.register("network.rm", async (body) => removeNetwork(store, String(body.ref ?? "")));
		rpc.register("cluster.autopilot", async (body) =>
			updateAutopilot(store, parseAutopilotUpdate((body.update ?? {}) as Record<string, unknown>)),
		);
		// Secrets and configs: the data travels to the leader only, which seals it; answers hold none.
		const keys = () => this.keys;
		for (const kind of ["secret", "config"] as const) {
			rpc.register(`${kind}.create`, async (body) => {
				const r = await createFileObject(store, kind, keys, body);
				return { id: r.id, index: r.version, services: [] };
			});
			rpc.register(`${kind}.update`, async (body) => {
				const r = await updateFileObject(store, kind, keys, body);
				return { id: r.id, index: r.version, services: r.services };
			});
			rpc.register(`${kind}.rm`, async (body) => removeFileObject(store, kind, String(body.ref ?? "")));
		}
		rpc.register("cluster.autolock", async (body) => {
			const change = body.change;
			if (change !== "on" && change !== "off" && change !== "rotate")
				throw new Error("cluster.autolock needs change: on, off or rotate");
			return changeAutolock(store, this.keys, change);
		});
		// A joining manager's replica: a non-voter (an existing voter stays one). raft.addVoter is what
		// managers of the previous version ask for.
		for (const [method, add] of [
			["raft.addNonvoter", (id: string, a: string) => store.addNonvoter(id, a)],
			["raft.addVoter", (id: string, a: string) => store.addVoter(id, a)],
		] as const)
			rpc.register(method, async (body) => {
				const id = String(body.id ?? "");
				const address = String(body.address ?? "");
				if (!id || !address.includes("/p2p/")) throw new Error(`${method} needs an id and a /p2p/ multiaddr`);
				return add(id, address);
			});
		// The recovered cluster's leader says this replica was left out (only a server of this
		// replica's configuration may say so: the rpc checks the sender).
		rpc.register(
			FENCE_KIND,
			async (body, from) => {
				const f = checkFence(store, o.clusterId, body, from);
				o.logger.warn(
					{ by: f.by, recoveredAt: f.at },
					"fenced: a recovery left this manager out; stopping its replica",
				);
				o.onFenced?.(f);
				return { fenced: true };
			},
			{ local: true },
		);
		// A leaving manager asks to be taken out of the configuration: only itself, never another.
		rpc.register("raft.leave", async (_body, from) => removeLeaver(store, from));
	}

	/** `forceNewCluster`: disaster recovery first (ClusterStore.recover): this server alone votes. */
	static async start(o: ManagerOptions & { bootstrap?: boolean; forceNewCluster?: boolean }): Promise<Manager> {
		if (!o.keys && o.acquireKeysTo && !o.bootstrap) {
			const keys = await fetchManagerKeys(o, o.acquireKeysTo, 3000);
			if (keys) {
				o = { ...o, keys, keyFile: o.acquireKeysTo };
				o.logger.info(
					{},
					"cluster secret received from another manager before the replica started (sealed from its first entry)",
				);
			} else
				o.logger.warn(
					{},
					"no manager gave the cluster secret yet: this replica starts unsealed, and asks again (its Raft files are sealed once it has it)",
				);
		}
		const store = await ClusterStore.open({
			dir: join(o.dataRoot, "raft"),
			node: o.host.node,
			clusterId: o.clusterId,
			logger: o.logger,
			authorize: (peer) => o.directory.isManager(peer),
			// Encryption at rest: the Raft log and snapshots are sealed with this manager's data key.
			...(o.keys ? { cipher: dataCipher(o.keys.dataKey) } : {}),
		});
		if (o.bootstrap && (await store.isEmpty())) await store.bootstrap();
		let recovered: RecoveryResult | undefined;
		if (o.forceNewCluster) {
			try {
				recovered = await store.recover();
			} catch (err) {
				await store.stop();
				throw err;
			}
		}
		const rpc = new LeaderRpc(o.host, store, o.logger);
		await rpc.start();
		await store.start();
		let self: Manager | undefined;
		const files = fileSource(
			store,
			() => self?.keys ?? o.keys,
			(err) => o.logger.error({ code: (err as { code?: string }).code }, `a secret did not open: ${err.message}`),
		);
		const endpoint = new DispatchEndpoint({ host: o.host, store, logger: o.logger, files });
		await endpoint.start();
		const m = new Manager(store, rpc, o, endpoint);
		self = m;
		m.recovered = recovered;
		m.loops.start();
		return m;
	}

	/** After a start with forceNewCluster: waits until this server leads alone, and says what it kept. */
	async recoverySummary(timeoutMs = 20_000): Promise<RecoverySummary> {
		if (!this.recovered) throw new AgentError("this manager was not started by a recovery", "ERR_RECOVERY");
		const summary = await summarizeRecovery(this.store, this.recovered, { timeoutMs });
		// The servers left out are fenced should they come back with the old configuration.
		await recordRecovery(
			this.store,
			summary.removed.map((s) => s.id),
		);
		return summary;
	}

	/** What leaving loses when this manager is the only voter (else undefined: it can hand its vote on). */
	lastManagerLoss(hasLeft?: (id: string) => boolean): LostWithLastManager | undefined {
		return lostWithLastManager(this.store, hasLeft);
	}

	/** Before leaving: hand leadership over if it leads, and get out of the Raft configuration. */
	handOffVote(timeoutMs: number): Promise<{ removed: boolean; newLeader?: string }> {
		return handOffVote(this.store, (kind, body, o) => this.rpc.call(kind, body, o), { timeoutMs, log: this.log });
	}

	get keys(): ManagerKeys | undefined {
		return this.heldKeys;
	}

	/**
	 * The keys arrived after start some other way than acquireKeys: written to `keyFile` first, then
	 * held as acquireKeys holds them (its Raft files sealed from now on). Refused when it holds keys
	 * already: its files may be sealed with their data key.
	 */
	async adoptKeys(keys: ManagerKeys, keyFile: string): Promise<void> {
		if (this.heldKeys) throw new ConflictError("this manager holds its keys already", "ERR_KEYS_HELD");
		writeKeyFile(keyFile, keys);
		await this.holdKeys(keys, keyFile);
	}

	/**
	 * A manager without the cluster secret (promoted, or joined through an older manager) asks the
	 * other managers for it and writes its own key file; undefined when none gave it (yet).
	 */
	async acquireKeys(keyFile: string): Promise<ManagerKeys | undefined> {
		if (this.heldKeys) return this.heldKeys;
		// The key file is written (durably) before it returns: only then may the Raft files be sealed.
		const keys = await fetchManagerKeys({ host: this.host, directory: this.directory, logger: this.log }, keyFile);
		if (!keys) return undefined;
		await this.holdKeys(keys, keyFile);
		this.log.info({}, "cluster secret received from another manager; this manager now admits nodes");
		return keys;
	}

	/** Keys that arrived after start, already in `keyFile`: held, followed by autolock, and sealing the replica. */
	private async holdKeys(keys: ManagerKeys, keyFile: string): Promise<void> {
		this.heldKeys = keys;
		// With autolock on, its key file is sealed with the cluster's unlock key like every manager's.
		this.unfollowAutolock();
		this.unfollowAutolock = followAutolock(this.store, keys, keyFile, this.log);
		// Its replica started unsealed: its own data key seals its Raft files from now on, and what
		// they hold in the clear is rewritten sealed (not only from its next start).
		try {
			await this.store.sealAtRest(dataCipher(keys.dataKey));
			this.log.info({}, "this manager's Raft log and snapshots are now sealed with its data key");
		} catch (err) {
			this.log.error(
				{ err: (err as Error).message, code: (err as { code?: string }).code },
				"could not seal this manager's Raft files (what it writes from its next start is sealed)",
			);
		}
	}

	/** First write of a new cluster: its record and the ingress network (Swarm's default). */
	async initCluster(clusterId: string, o: InitOptions): Promise<{ unlockKey?: string }> {
		await this.store.waitForLeader(10_000);
		const unlockKey = o.autolock ? newKey() : undefined;
		if (unlockKey && !this.keys) throw new NoClusterSecretError("autolock");
		const record: ClusterRecord = {
			id: CLUSTER_ID,
			clusterId,
			addrPools: o.addrPools,
			subnetSize: o.subnetSize,
			nextVni: 4096,
			createdAt: new Date().toISOString(),
			...(unlockKey ? { autolock: sealedUnlockKey(this.keys!, unlockKey) } : {}),
		};
		await this.store.commit([{ op: "create", table: "cluster", id: CLUSTER_ID, value: record }]);
		await createNetwork(this.store, validateNetworkSpec({ name: "ingress", ingress: true, labels: {}, options: {} }));
		this.log.info(
			{ pools: o.addrPools, subnetSize: o.subnetSize, autolock: Boolean(unlockKey) },
			"cluster initialized with an ingress network",
		);
		return unlockKey ? { unlockKey: formatUnlockKey(unlockKey) } : {};
	}

	/** `swarm update --autolock`, `unlock-key --rotate` (on the leader): the key now in force, null when off. */
	async changeAutolock(change: AutolockChange): Promise<{ unlockKey: string | null }> {
		const r = (await this.rpc.call("cluster.autolock", { change })) as { unlockKey: string | null; index: number };
		// Applied here before answering: this manager's own key file is resealed by then.
		await this.store.waitForApplied(r.index);
		this.log.info({ change }, r.unlockKey ? "autolock on; the unlock key was given to the caller" : "autolock off");
		return { unlockKey: r.unlockKey };
	}

	/** `swarm update --autolock=true|false`: whether it changed, and the new key when it was turned on. */
	async updateSwarm(o: { autolock?: boolean }): Promise<{ autolock: boolean; changed: boolean; unlockKey?: string }> {
		const before = this.unlockKey().unlockKey !== null;
		if (o.autolock === undefined || o.autolock === before) return { autolock: before, changed: false };
		const r = await this.changeAutolock(o.autolock ? "on" : "off");
		return { autolock: o.autolock, changed: true, ...(r.unlockKey ? { unlockKey: r.unlockKey } : {}) };
	}

	/** `unlock-key [--rotate]`: rotating needs autolock on. */
	async unlockKeyOrRotate(rotate: boolean): Promise<{ unlockKey: string | null }> {
		if (!rotate) return this.unlockKey();
		if (this.unlockKey().unlockKey === null)
			throw new ConflictError(
				"autolock is off: turn it on with `tsswarm swarm update --autolock=true`",
				"ERR_NOT_AUTOLOCKED",
			);
		return this.changeAutolock("rotate");
	}

	/** `unlock-key`: the current unlock key (null when autolock is off), opened here with the cluster secret. */
	unlockKey(): { unlockKey: string | null } {
		if (!this.keys) throw new NoClusterSecretError("the unlock key");
		const k = storedUnlockKey(this.store, this.keys);
		return { unlockKey: k ? formatUnlockKey(k) : null };
	}

	/** Write (or rewrite) a node's record through the leader; resolves once it is applied here. */
	async registerNode(record: NodeRecord): Promise<void> {
		const index = (await this.rpc.call("node.register", { record: { ...record } })) as number;
		await this.store.waitForApplied(index);
		// The join grant hands this directory to the joiner: it must hold the record just written.
		this.nodes.flush();
	}

	/** `node rm`: delete the record through the leader; the node is then refused everywhere. */
	async removeNode(id: string): Promise<void> {
		const index = (await this.rpc.call("node.rm", { id })) as number;
		await this.store.waitForApplied(index);
	}

	/**
	 * On the leader, a writer of node addresses (from each node's own signed membership statement:
	 * a node that came back on a new IP); undefined elsewhere.
	 */
	addressWriter(): ((id: string, addr: string) => Promise<void>) | undefined {
		if (!this.store.isLeader()) return undefined;
		return async (id, addr) => {
			await setNodeAddr(this.store, id, addr);
		};
	}

	/**
	 * A node that joined with the manager token gets an (empty) replica as a non-voter: it takes no
	 * part in commits while it catches up. Autopilot gives it the vote once it has caught up and
	 * stayed healthy for the stabilization time (its record pins manager).
	 */
	addManager(id: string, address: string): Promise<unknown> {
		return this.rpc.call("raft.addNonvoter", { id, address }, { timeoutMs: 60_000 });
	}

	async createNetwork(spec: Record<string, unknown>): Promise<NetworkInspect> {
		validateNetworkSpec(spec); // refuse bad input here, before it travels
		const n = (await this.rpc.call("network.create", spec)) as NetworkInspect;
		// Written through the leader: let `network ls` here show it at once, as docker's does.
		await this.store.waitForApplied(n.Version);
		return n;
	}

	async removeNetwork(ref: string): Promise<{ id: string }> {
		const r = (await this.rpc.call("network.rm", { ref })) as { id: string; index: number };
		await this.store.waitForApplied(r.index);
		return { id: r.id };
	}

	listNetworks() {
		return this.store.list("networks").map(inspectNetwork);
	}

	inspectNetwork(ref: string) {
		return inspectNetwork(findNetwork(this.store, ref));
	}

	/** `secret create` / `config create` through the leader; the answer is read here once applied. */
	async createFileObject(kind: FileKind, body: Record<string, unknown>): Promise<{ id: string }> {
		const r = (await this.rpc.call(`${kind}.create`, { ...body })) as { id: string; index: number };
		await this.store.waitForApplied(r.index);
		return { id: r.id };
	}

	private async updateFileObject(kind: FileKind, body: Record<string, unknown>) {
		const r = (await this.rpc.call(`${kind}.update`, { ...body })) as { id: string; index: number; services: string[] };
		await this.store.waitForApplied(r.index);
		return r;
	}

	async updateSecret(body: Record<string, unknown>): Promise<SecretUpdateResponse> {
		const r = await this.updateFileObject("secret", body);
		return { ...this.inspectSecret(r.id), Services: r.services };
	}

	async updateConfig(body: Record<string, unknown>): Promise<ConfigUpdateResponse> {
		const r = await this.updateFileObject("config", body);
		return { ...this.inspectConfig(r.id), Services: r.services };
	}

	async removeFileObject(kind: FileKind, ref: string): Promise<{ id: string }> {
		const r = (await this.rpc.call(`${kind}.rm`, { ref })) as { id: string; index: number };
		await this.store.waitForApplied(r.index);
		return { id: r.id };
	}

	inspectSecret(ref: string): SecretInspect {
		return inspectSecret(findFileObject(this.store, "secret", ref));
	}

	inspectConfig(ref: string): ConfigInspect {
		return inspectConfig(findFileObject(this.store, "config", ref));
	}

	listSecrets(): SecretInspect[] {
		return this.store.list("secrets").map((r) => this.inspectSecret(r.id));
	}

	listConfigs(): ConfigInspect[] {
		return this.store.list("configs").map((r) => this.inspectConfig(r.id));
	}

	/** The Raft voters, the non-voters (catching up) and the leader, for node ls's MANAGER STATUS. */
	voters(): { ids: string[]; nonvoters: string[]; leader: string | undefined } {
		const servers = this.store.configuration().servers;
		const ids = servers.filter((s) => s.suffrage === "voter").map((s) => s.id);
		const nonvoters = servers.filter((s) => s.suffrage !== "voter").map((s) => s.id);
		return { ids, nonvoters, leader: this.store.leader()?.id };
	}

	/** `tsswarm swarm update`: autopilot's settings, through the leader; returns them whole. */
	async updateAutopilot(raw: unknown): Promise<AutopilotSettings> {
		const update = parseAutopilotUpdate((raw ?? {}) as Record<string, unknown>); // refuse bad input here
		const r = (await this.rpc.call("cluster.autopilot", { update: { ...update } })) as {
			index: number;
			settings: AutopilotSettings;
		};
		await this.store.waitForApplied(r.index);
		return r.settings;
	}

	/**
	 * This replica follows a leader, has applied all the leader said it committed (its own commit
	 * index is not enough: after installing an older snapshot it is that snapshot's index, and the
	 * records in it may say what is no longer so), and the directory holds its nodes table (not the
	 * list its join grant brought).
	 */
	replicaCurrent(): boolean {
		// inSync() holds only on a caught-up replica (ClusterStore.caughtUp).
		return this.store.leader() !== undefined && this.store.raftStats().commitIndex > 0 && this.nodes.inSync();
	}

	/** Whether this node's replica lists it as a voter (its latest configuration, committed or not). */
	votes(): boolean {
		return this.voters().ids.includes(this.store.id);
	}

	/**
	 * Whether a leader is heard from (within `ms`): a server removed from the configuration keeps
	 * the leader it knew but hears nothing more.
	 */
	hearsLeader(ms = 5000): boolean {
		const l = this.store.leader();
		if (!l) return false;
		if (l.id === this.store.id) return true;
		const at = this.store.raftStats().lastContact[l.id];
		return at !== undefined && Date.now() - at < ms;
	}

	/** Autopilot's settings as this manager's replica has them. */
	autopilotSettings(): AutopilotSettings {
		return autopilotSettings(this.store);
	}

	async createService(spec: unknown): Promise<StoredRecord<Service>> {
		const r = (await this.rpc.call("service.create", { spec })) as StoredRecord<Service>;
		await this.store.waitForApplied(r.version);
		return r;
	}

	/** A spec checked and normalized, nothing written (answered here, no leader needed). */
	validateService(spec: unknown): ServiceSpec {
		return validateServiceFields(this.store, spec);
	}

	async scaleService(ref: string, replicas: unknown): Promise<ServiceRow> {
		const r = (await this.rpc.call("service.scale", { ref, replicas })) as StoredRecord<Service>;
		await this.store.waitForApplied(r.version);
		return serviceRow(this.store, this.store.get("services", r.id) ?? r);
	}

	/** `service update`: a whole new spec; `version` refuses a stale one; `force` redeploys unchanged. */
	async updateService(
		ref: string,
		o: { spec: unknown; version?: unknown; force?: unknown },
	): Promise<StoredRecord<Service>> {
		const r = (await this.rpc.call("service.update", { ref, ...o })) as StoredRecord<Service>;
		await this.store.waitForApplied(r.version);
		return r;
	}

	async rollbackService(ref: string, o: { version?: unknown } = {}): Promise<StoredRecord<Service>> {
		const r = (await this.rpc.call("service.rollback", { ref, ...o })) as StoredRecord<Service>;
		await this.store.waitForApplied(r.version);
		return r;
	}

	async removeService(ref: string): Promise<{ id: string }> {
		const r = (await this.rpc.call("service.rm", { ref })) as { id: string; index: number };
		await this.store.waitForApplied(r.index);
		return { id: r.id };
	}

	listServices(): ServiceRow[] {
		return this.store.list("services").map((s) => serviceRow(this.store, s));
	}

	inspectService(ref: string): StoredRecord<Service> {
		return findService(this.store, ref);
	}

	serviceTasks(ref: string): TaskRow[] {
		const s = findService(this.store, ref);
		return taskRows(
			this.store,
			this.store.find("tasks", { by: "serviceId", value: s.id }).map((r) => r.value),
		);
	}

	/** `node ps`: the tasks on a node (id, hostname, unique prefix or `self`). */
	nodeTasks(ref: string): TaskRow[] {
		const n = findNode(this.store, ref || "self");
		return taskRows(
			this.store,
			this.store.find("tasks", { by: "nodeId", value: n.id }).map((r) => r.value),
		);
	}

	inspectNodes(refs: string[]): NodeInspect[] {
		return (refs.length ? refs : ["self"]).map((r) => inspectNode(this.store, findNode(this.store, r)));
	}

	/** `node update --availability/--label-add/--label-rm`, through the leader. */
	async updateNode(ref: string, raw: unknown): Promise<NodeInspect> {
		const update = parseNodeUpdate((raw ?? {}) as Record<string, unknown>); // refuse bad input before it travels
		const id = findNode(this.store, ref).id;
		const r = (await this.rpc.call("node.update", { ref: id, update: { ...update } })) as { id: string; index: number };
		await this.store.waitForApplied(r.index);
		return inspectNode(this.store, findNode(this.store, r.id));
	}

	/** `tsswarm events`: changes of the cluster state as this manager applies them. */
	events(raw: Record<string, unknown>, signal: AbortSignal): AsyncGenerator<ClusterEvent> {
		return this.eventLog.stream(parseEventsQuery(raw), signal);
	}

	/** `service logs`: the merged log of a service's (or one task's) tasks from the nodes that run them. */
	serviceLogs(raw: Record<string, unknown>, signal: AbortSignal): AsyncGenerator<LogItem> {
		if (!this.logs) throw new AgentError("this manager reads no task logs (started without agent/logs)", "ERR_NO_LOGS");
		return serviceLogs(this.store, this.logs, parseLogsQuery(raw), signal);
	}

	async stop(): Promise<void> {
		this.eventLog.close();
		await this.loops.stop();
		await this.endpoint.stop();
		this.nodes.stop();
		this.unfollowAutolock();
		await this.rpc.stop();
		await this.store.stop();
	}
}

/** The leader's loops: allocation, then scheduling, then the orchestrator's and the updater's decisions. */
/** This node's manager keys from the cluster secret another manager gives; written to keyFile. */
async function fetchManagerKeys(
	o: { host: Host; directory: NodeDirectory; logger: StoreLogger },
	keyFile: string,
	timeoutMs?: number,
): Promise<ManagerKeys | undefined> {
	const secret = await fetchClusterSecret({
		host: o.host,
		directory: o.directory,
		self: o.host.peerId,
		logger: o.logger,
		...(timeoutMs !== undefined ? { timeoutMs } : {}),
	});
	if (!secret) return undefined;
	const keys = newManagerKeys(secret);
	writeKeyFile(keyFile, keys);
	return keys;
}

function leaderComponents(store: ClusterStore, o: ManagerOptions, endpoint: DispatchEndpoint): LeaderComponent[] {
	const dispatcher: LeaderComponent = {
		name: "dispatcher",
		async run(signal) {
			// One instance per term: it starts once and its sessions end with the signal.
			await new Dispatcher({ endpoint, logger: o.logger }).start(signal);
			if (!signal.aborted) await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
		},
	};
	const allocator: LeaderComponent = {
		name: "allocator",
		async run(signal) {
			const c = new AllocatorComponent({
				source: {
					read: () => ({
						services: store.list("services"),
						tasks: store.list("tasks"),
						networks: store.list("networks"),
					}),
					commit: async (ops) => {
						await store.commit(ops);
					},
					subscribe: onTables(store, ["services", "tasks", "networks"]),
				},
				log: o.logger,
			});
			c.start();
			if (!signal.aborted) await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
			await c.stop();
		},
	};
	return [
		dispatcher,
		allocator,
		new Scheduler(store, o.logger),
		new Orchestrator(store, o.logger, {
			globalFits: globalFits(store),
			owns: updaterOwns,
			...(o.downGraceMs !== undefined ? { downGraceMs: o.downGraceMs } : {}),
		}),
		new Updater(store, o.logger, {
			globalFits: globalFits(store),
			...(o.downGraceMs !== undefined ? { downGraceMs: o.downGraceMs } : {}),
		}),
		new Autopilot(store, o.logger, o.autopilot),
		new RecoveryFencer(store, o.host, o.autopilot?.members ?? (() => new Map()), o.logger),
	];
}
