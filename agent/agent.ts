// The agent process (the composition root): libp2p host + join protocol + membership, the local
// API socket for the CLI (api/), this node's cluster identity on disk (data root/cluster/), and on
// managers the Raft-replicated store with leader forwarding (manager/, store/). The dispatcher and
// the worker come next (ROADMAP).
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { arch, cpus, hostname, networkInterfaces, totalmem } from "node:os";
import { join } from "node:path";
import { privateKeyFromProtobuf } from "@libp2p/crypto/keys";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import pino from "pino";
import { writeFileAtomic } from "../consensus/index.ts";
import { agentRoutes, ControlServer, socketPath } from "./api/index.ts";
import { DispatcherClient } from "./dispatch/index.ts";
import {
	AgentError,
	AlreadyInClusterError,
	ConflictError,
	NotInClusterError,
	ReplicaNotReadyError,
	UsageError,
} from "./errors.ts";
import { DEFAULT_PORT, Host } from "./host/index.ts";
import {
	fingerprint,
	formatToken,
	hashSecret,
	JOIN_PROTOCOL,
	type JoinGrant,
	type JoinServerState,
	type Role,
	requestJoin,
	serveJoin,
} from "./join/index.ts";
// The manager side (Raft store replica, manager loops) is imported when a node becomes a manager:
// a worker never evaluates agent/manager.
import {
	InvalidUnlockKeyError,
	KeysLockedError,
	keyFileExists,
	keyFileLocked,
	type ManagerKeys,
	newManagerKeys,
	parseUnlockKey,
	readKeyFile,
	SealedDataError,
	writeKeyFile,
} from "./keyring/index.ts";
import { type LogSource, logsClient, serveLogs, type TaskLogFetcher } from "./logs/index.ts";
import type { InitOptions, JoinMaterial, Manager } from "./manager/index.ts";
import { lanConfig, Membership, UdpTransport } from "./membership/index.ts";
import {
	AddressFollower,
	DirectorySync,
	joinRecord,
	type NodeDescription,
	NodeDirectory,
	NodeRemoveRefusedError,
	nodeRecord,
	validateDescription,
	validateEntries,
} from "./nodes/index.ts";
import { probeRecordRole, RoleController } from "./roles/index.ts";
import { NotFoundError, NotManagerError } from "./store/index.ts";
import { startNodeWorker } from "./worker/index.ts";

export interface AgentOptions {
	dataRoot: string;
	/** ip[:port] for TCP (libp2p) and UDP (membership); default 0.0.0.0:2377. */
	listen?: string;
	/**
	 * ip[:port] others reach this node at. Default: the listen address, or when that is 0.0.0.0
	 * the address of the interface with the default route (or the only non-loopback one).
	 */
	advertise?: string;
	/** Node labels, gossiped with membership (e.g. zone=a). */
	labels?: Record<string, string>;
	/** The name the node has in the cluster (default: the machine's hostname). */
	hostname?: string;
	/** How long `leave` spends telling the others (default 1 s). */
	leaveTimeoutMs?: number;
}

interface ClusterState {
	clusterId: string;
	role: Role;
	membershipKey: string;
	/**
	 * Before the join keys moved into the store (sealed): the init node's manager and worker
	 * secrets, in the clear beside cluster.key. Read for the upgrade, then moved and dropped.
	 */
	secrets?: { manager: string; worker: string };
	seeds: string[];
}

const splitAddr = (a: string, what: string): { ip: string; port: number } => {
	const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(a);
	if (!m) throw new UsageError(`invalid ${what} "${a}": use IP[:PORT]`);
	const port = m[2] === undefined ? DEFAULT_PORT : Number(m[2]);
	if (port < 1 || port > 65535) throw new UsageError(`invalid ${what} port in "${a}"`);
	return { ip: m[1]!, port };
};

/** The interface the default route leaves through (from /proc/net/route), if any. */
function defaultRouteInterface(): string | undefined {
	try {
		for (const line of readFileSync("/proc/net/route", "utf8").split("\n").slice(1)) {
			const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
			if (dest === "00000000" && mask === "00000000") return iface;
		}
	} catch {}
	return undefined;
}

type Interfaces = ReturnType<typeof networkInterfaces>;

/**
 * The address to tell others when listening on 0.0.0.0: the default route's interface's IPv4
 * address, else the only non-loopback IPv4 address; otherwise the choice is the user's.
 */
export function pickAdvertiseIp(
	ifs: Interfaces = networkInterfaces(),
	viaDefault: string | null = defaultRouteInterface() ?? null,
): string {
	const v4 = (name: string) => (ifs[name] ?? []).filter((a) => a.family === "IPv4" && !a.internal);
	if (viaDefault && v4(viaDefault).length > 0) return v4(viaDefault)[0]!.address;
	const all = Object.keys(ifs).flatMap(v4);
	if (all.length === 1) return all[0]!.address;
	throw new AgentError(
		all.length === 0
			? "no non-loopback IPv4 address to advertise: pass --advertise-addr IP[:PORT]"
			: `several addresses could be this node's (${all.map((a) => a.address).join(", ")}) and no default route picks one: pass --advertise-addr IP[:PORT]`,
		"ERR_ADVERTISE_AMBIGUOUS",
	);
}

// The release bundle (scripts/release) defines the version at build time; from source it is package.json's.
declare const __TSSWARM_VERSION__: string | undefined;
const VERSION =
	typeof __TSSWARM_VERSION__ === "string"
		? __TSSWARM_VERSION__
		: (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version as string);

/** agent/manager's MANAGER_PROTOCOL, the one a worker's directory sync asks managers on: named here so
 * that a worker does not load agent/manager for one string (tests/release/lazy.test.ts checks both). */
const MANAGER_PROTOCOL = "/tsswarm/manager/1";

function hostPlatform() {
	const a = arch();
	return a === "arm64"
		? { os: "linux", architecture: "arm64", variant: "v8" }
		: a === "arm"
			? { os: "linux", architecture: "arm", variant: "v7" }
			: { os: "linux", architecture: a === "x64" ? "amd64" : a };
}

export class Agent {
	readonly o: AgentOptions;
	readonly log: pino.Logger;
	private host!: Host;
	private control!: ControlServer;
	private membership: Membership | undefined;
	private manager: Manager | undefined;
	private state: ClusterState | undefined;
	/** The init node's signing key of a cluster made before the join keys moved into the store. */
	private clusterKey: Ed25519PrivateKey | undefined;
	/** Whether /tsswarm/join/1 is registered (on managers). */
	private servingJoin = false;
	/** This manager's keys (DATA/cluster/keys): the shared cluster secret and its own data key. */
	private keys: ManagerKeys | undefined;
	/**
	 * Autolock: a manager whose key file is sealed starts locked: no Raft, no API but info and
	 * unlock, no join; its worker side runs (tasks keep running) until `tsswarm unlock`.
	 */
	private locked = false;
	/** Who is in the cluster: the host's allow-list, and who may speak Raft (managers). */
	private readonly directory: NodeDirectory;
	private sync: DirectorySync | undefined;
	/** Follows this node's record role: starts or stops the manager side (autopilot's decisions). */
	private roles: RoleController | undefined;
	/** Members' addresses, from their signed statements, into the peer store and (leader) their records. */
	private addresses: AddressFollower | undefined;
	/** This node's tasks (every node runs tasks) and its session with the leader's dispatcher. */
	private worker: Awaited<ReturnType<typeof startNodeWorker>> | undefined;
	private dispatch: DispatcherClient | undefined;
	/** Task logs: served to managers from this node's worker; read from every node on a manager. */
	private logs: { fetch: TaskLogFetcher; stop(): Promise<void> } | undefined;
	private readonly dir: string;

	constructor(o: AgentOptions) {
		this.o = o;
		this.dir = join(o.dataRoot, "cluster");
		mkdirSync(this.dir, { recursive: true, mode: 0o700 });
		this.directory = new NodeDirectory(join(this.dir, "nodes.json"));
		this.log = pino({ base: { node: process.env.TSSWARM_NODE ?? undefined } }, pino.destination(2));
		this.bind = splitAddr(o.listen ?? `0.0.0.0:${DEFAULT_PORT}`, "listen address");
	}

	/** Where we bind (TCP and UDP). */
	private readonly bind: { ip: string; port: number };
	/** What we tell others (libp2p announce, membership address, the join command). */
	private advertise!: { ip: string; port: number };

	private get advertiseAddr(): string {
		return `${this.advertise.ip}:${this.advertise.port}`;
	}

	async start(): Promise<void> {
		const adv = this.o.advertise ? splitAddr(this.o.advertise, "advertise address") : undefined;
		this.advertise = {
			ip: adv?.ip ?? (this.bind.ip === "0.0.0.0" ? pickAdvertiseIp() : this.bind.ip),
			port: adv?.port ?? this.bind.port,
		};
		this.host = await Host.create({
			dataDir: this.o.dataRoot,
			listen: [`/ip4/${this.bind.ip}/tcp/${this.bind.port}`],
			announce: [`/ip4/${this.advertise.ip}/tcp/${this.advertise.port}`],
			allowList: this.directory,
			logger: this.log,
			// Only a manager that can serve the join protocol lets non-members in (for its grace period).
			admitNewcomers: () => !this.locked && (this.manager?.join.ready() === true || this.legacyJoin() !== undefined),
		});
		// A node taken out of the directory (node rm) is cut off at once, not at its next dial.
		this.directory.on("removed", (ids) => {
			for (const id of ids) void this.host.node.hangUp(peerIdFromString(id)).catch(() => {});
			this.log.info({ nodes: ids }, "nodes removed from the directory; their connections closed");
		});
		this.host.on("refused", (r) => {
			if (r.error.code === "ERR_NOT_A_MEMBER") this.sync?.soon();
		});
		this.control = new ControlServer(socketPath(this.o.dataRoot), agentRoutes(this));
		await this.control.listen();
		if (existsSync(join(this.dir, "state.json"))) {
			this.state = JSON.parse(readFileSync(join(this.dir, "state.json"), "utf8")) as ClusterState;
			if (existsSync(join(this.dir, "cluster.key")))
				this.clusterKey = privateKeyFromProtobuf(readFileSync(join(this.dir, "cluster.key"))) as Ed25519PrivateKey;
			const keyFile = join(this.dir, "keys");
			if (keyFileExists(keyFile)) {
				if (keyFileLocked(keyFile)) this.locked = this.state.role === "manager";
				else this.keys = readKeyFile(keyFile);
			} else if (this.clusterKey) {
				// A cluster made before the keyring: its init node makes the keys now.
				this.keys = newManagerKeys();
				writeKeyFile(keyFile, this.keys);
			}
			await this.startCluster();
		}
		this.log.info(
			{
				nodeId: this.host.peerId,
				listen: `${this.bind.ip}:${this.bind.port}`,
				advertise: this.advertiseAddr,
				cluster: this.state?.clusterId ?? null,
			},
			"agent started",
		);
	}

	private saveState(): void {
		// tmp + fsync + rename + directory fsync: a power cut leaves the old or the new state, never none.
		writeFileAtomic(join(this.dir, "state.json"), Buffer.from(JSON.stringify(this.state, null, 1)));
	}

	managerOnly(): Manager {
		if (!this.state) throw new NotInClusterError();
		if (!this.manager) throw new NotManagerError();
		return this.manager;
	}

	private async startCluster(bootstrap = false): Promise<void> {
		const st = this.state!;
		if (st.role === "manager" && !this.locked) this.manager = await this.startManager({ bootstrap });
		else this.startSync();
		this.membership = new Membership({
			id: this.host.peerId,
			nodeKey: this.host.privateKey, // signs this node's own statements (alive, leave)
			// Bound where we listen; gossiped as where others reach us.
			transport: new UdpTransport(this.bind.ip, this.bind.port, this.advertiseAddr),
			clusterKey: Buffer.from(st.membershipKey, "base64"),
			config: lanConfig(),
			meta: {
				addresses: this.host.addrs(),
				platform: hostPlatform(),
				resources: { cpus: cpus().length, memoryBytes: totalmem() },
				role: st.role,
				version: VERSION,
				...(this.o.labels && Object.keys(this.o.labels).length > 0 ? { labels: this.o.labels } : {}),
			},
			logger: this.log,
		});
		// Membership reports liveness only: who may connect comes from the nodes table (written at
		// join, removed by `node rm`), never from gossip, which any key holder could forge.
		this.membership.on("fail", (m) => this.log.warn({ member: m.id, addr: m.addr }, "member failed"));
		this.membership.on("leave", (m) => this.log.info({ member: m.id }, "member left"));
		await this.membership.start();
		this.addresses = new AddressFollower({
			self: this.host.peerId,
			host: this.host,
			directory: this.directory,
			members: this.membership,
			recordWriter: () => this.manager?.addressWriter(),
			logger: this.log,
		});
		this.addresses.start();
		// A node back on a new address finds the others where it last knew them: its seeds and
		// its directory (the saved copy of the nodes table: managers first, at most 16 in all).
		const others = this.directory.list().filter((e) => e.id !== this.host.peerId);
		const known = [...others.filter((e) => e.role === "manager"), ...others.filter((e) => e.role !== "manager")];
		const seeds = new Set([...st.seeds, ...known.slice(0, 16).map((e) => e.addr)]);
		seeds.delete(this.advertiseAddr);
		if (seeds.size) this.membership.join([...seeds]);
		if (!this.locked) await this.serveJoin();
		await this.startWorker();
		if (this.locked) this.log.warn({}, "this manager is locked (autolock): run `tsswarm unlock` to start it");
		this.roles = new RoleController({
			self: this.host.peerId,
			directory: this.directory,
			logger: this.log,
			// A locked manager follows nothing until it is unlocked.
			current: () =>
				this.locked ? (this.directory.get(this.host.peerId)?.role ?? "manager") : (this.state?.role ?? "worker"),
			becomeManager: (why) => this.becomeManager(why),
			becomeWorker: (why) => this.becomeWorker(why),
			hasLeader: () => this.locked || (this.manager?.hearsLeader() ?? false),
			directoryCurrent: () => this.manager?.replicaCurrent() ?? true,
			votes: () => this.manager?.votes() ?? false,
			probeRole: async () => {
				const r = await probeRecordRole({
					host: this.host,
					directory: this.directory,
					self: this.host.peerId,
					protocol: MANAGER_PROTOCOL,
					logger: this.log,
					alive: () => this.membership?.live() ?? [],
				});
				// The current directory: a worker's sync and dispatcher find today's managers with it.
				if (r?.role === "worker") this.directory.set(r.entries, r.version);
				return r?.role;
			},
		});
		this.roles.start();
	}

	/** Workers (and locked managers) have no store: they keep their directory by asking a manager,
	 * and sooner when a peer they do not know yet knocks (it may have joined since). */
	private startSync(): void {
		this.sync = new DirectorySync({
			host: this.host,
			directory: this.directory,
			protocol: MANAGER_PROTOCOL,
			logger: this.log,
		});
		this.sync.start();
	}

	/** Autopilot promoted this node (its record says manager): an empty replica the leader fills. */
	private async becomeManager(reason: string): Promise<void> {
		this.sync?.stop();
		this.sync = undefined;
		rmSync(join(this.o.dataRoot, "raft"), { recursive: true, force: true });
		try {
			this.manager = await this.startManager({});
		} catch (err) {
			// Still a worker (the controller retries): keep its directory fresh meanwhile.
			this.startSync();
			throw err;
		}
		this.state!.role = "manager";
		this.saveState();
		await this.restartDispatch();
		// It admits joiners too, once its replica has the join keys and it holds the cluster secret
		// (the manager's key settling fetches that from another manager).
		await this.serveJoin();
		this.log.info({ reason }, "this node is a manager now (its Raft replica catches up from the leader)");
	}

	/** Autopilot demoted this node (its record says worker): the replica stops and is deleted. */
	private async becomeWorker(reason: string): Promise<void> {
		if (this.servingJoin) await this.host.unhandle(JOIN_PROTOCOL);
		this.servingJoin = false;
		await this.manager?.stop();
		this.manager = undefined;
		rmSync(join(this.o.dataRoot, "raft"), { recursive: true, force: true });
		// A worker holds no manager keys: the cluster secret opens the store's secrets.
		this.keys = undefined;
		rmSync(join(this.dir, "keys"), { force: true });
		this.state!.role = "worker";
		this.saveState();
		if (!this.sync) this.startSync();
		await this.restartDispatch();
		this.log.info({ reason }, "this node is a worker now (its Raft replica is removed)");
	}

	/** The dispatcher session again after a role change (a manager's own is in-process). */
	private async restartDispatch(): Promise<void> {
		await this.dispatch?.stop();
		this.dispatch = undefined;
		if (this.worker) this.startDispatch();
	}

	/** Every manager serves the join protocol; it admits once it can open the store's join keys. */
	private async serveJoin(): Promise<void> {
		const st = this.state!;
		if (st.role === "manager" && !this.servingJoin) {
			await serveJoin(this.host, this.joinServer(st.clusterId));
			this.servingJoin = true;
		}
	}

	/**
	 * The API's reads wait for this manager's replica to be current (a restarted one replays its
	 * log once it hears the commit index): at most 10 s, then ReplicaNotReadyError. A worker has
	 * no replica; its manager routes refuse by themselves.
	 */
	async replicaReady(): Promise<void> {
		const deadline = Date.now() + 10_000;
		for (;;) {
			const m = this.manager;
			if (!m || m.replicaCurrent()) return;
			if (Date.now() >= deadline) {
				const st = m.store.raftStats();
				throw new ReplicaNotReadyError(
					m.store.leader() ? `applied ${st.appliedIndex} of ${st.leaderCommitIndex}` : "no leader is known",
				);
			}
			await new Promise((r) => setTimeout(r, 50));
		}
	}

	/** Refuses everything but info and unlock while this manager is locked (the API's guard). */
	assertUnlocked(): void {
		if (this.locked) throw new KeysLockedError();
	}

	private unlocking: Promise<{ unlocked: boolean }> | undefined;

	/** `tsswarm unlock`: a wrong key is refused and the node stays locked; the right one starts the manager. */
	async unlock(text: string): Promise<{ unlocked: boolean }> {
		if (!this.locked) throw new ConflictError("this node is not locked", "ERR_NOT_LOCKED");
		const key = parseUnlockKey(text);
		let keys: ManagerKeys;
		try {
			keys = readKeyFile(join(this.dir, "keys"), key);
		} catch (err) {
			if (err instanceof SealedDataError) throw new InvalidUnlockKeyError("it does not open this manager's keys");
			throw err;
		}
		this.unlocking ??= this.startUnlocked(keys).finally(() => {
			this.unlocking = undefined;
		});
		return this.unlocking;
	}

	private async startUnlocked(keys: ManagerKeys): Promise<{ unlocked: boolean }> {
		this.keys = keys;
		this.manager = await this.startManager({});
		this.locked = false;
		this.sync?.stop();
		this.sync = undefined;
		// The worker's dispatcher session moves to this manager's own endpoint (in-process).
		await this.dispatch?.stop();
		this.startDispatch();
		await this.serveJoin();
		this.log.info({}, "manager unlocked and started");
		return { unlocked: true };
	}

	/** `swarm update --autolock=true|false` (through the leader); the new key only when turned on. */
	updateSwarm(o: { autolock?: boolean }) {
		return this.managerOnly().updateSwarm(o);
	}

	/** `unlock-key [--rotate]`. */
	unlockKey(rotate: boolean) {
		return this.managerOnly().unlockKeyOrRotate(rotate);
	}

	private async startManager(o: { bootstrap?: boolean; forceNewCluster?: boolean }): Promise<Manager> {
		const { Manager } = await import("./manager/index.ts");
		return Manager.start({
			host: this.host,
			dataRoot: this.o.dataRoot,
			clusterId: this.state!.clusterId,
			logger: this.log,
			...o,
			directory: this.directory,
			...(this.keys
				? { keys: this.keys, keyFile: join(this.dir, "keys") }
				: keyFileExists(join(this.dir, "keys"))
					? {}
					: { acquireKeysTo: join(this.dir, "keys") }),
			autopilot: { members: () => new Map((this.membership?.all() ?? []).map((m) => [m.id, m.state])) },
			onFenced: (f) => this.roles?.fenced(`a recovery by ${f.by} at ${f.at} left this manager out`),
			logs: (node, req, onLines, signal) => {
				if (!this.logs) throw new NotInClusterError();
				return this.logs.fetch(node, req, onLines, signal);
			},
		}).then((m) => {
			this.keys ??= m.keys; // fetched before its replica started (a promoted node)
			void this.settleManagerKeys(m);
			return m;
		});
	}

	/** Tasks running on this node (tsswarm info). */
	tasksRunning(): number {
		return this.worker?.worker.tasks().filter((t) => t.status.state === "running").length ?? 0;
	}

	/** Every node runs tasks: the worker, fed by a session with the leader's dispatcher. */
	private async startWorker(): Promise<void> {
		const w = await startNodeWorker({
			dataRoot: this.o.dataRoot,
			nodeId: this.host.peerId,
			logger: this.log,
			underlayIp: this.advertise.ip,
		});
		this.worker = w;
		const source: LogSource = (taskId, o) => w.worker.taskLogs(taskId, o);
		const stopServing = await serveLogs({
			host: this.host,
			directory: this.directory,
			source,
			self: this.host.peerId,
			logger: this.log,
		});
		this.logs = {
			fetch: logsClient({ host: this.host, directory: this.directory, self: this.host.peerId, local: source }),
			stop: stopServing,
		};
		this.startDispatch();
	}

	/** The worker's session with the leader's dispatcher (again after the manager restarted). */
	private startDispatch(): void {
		this.dispatch = new DispatcherClient({
			host: this.host,
			directory: this.directory,
			sink: this.worker!.worker,
			logger: this.log,
			// libp2p cannot dial itself: a manager's own worker talks to its endpoint in-process.
			...(this.manager ? { local: this.manager.endpoint } : {}),
		});
		// The leader says our record changed (a promotion): look now, not at the next poll.
		this.dispatch.on("directory", ({ version }) => this.sync?.changedAt(version));
		this.dispatch.start();
	}

	/** The join protocol's view of this manager: the material is read at each use (rotation, arrival). */
	private joinServer(clusterId: string): JoinServerState {
		const material = () => this.joinMaterial();
		return {
			clusterId,
			get clusterKey() {
				return material().signingKey;
			},
			secretHashes: () => {
				const s = material().secrets;
				return { manager: hashSecret(s.manager), worker: hashSecret(s.worker) };
			},
			grant: (peer, role, meta) => this.grant(peer, role, meta),
		};
	}

	/** The old files' material, until it is moved into the store. */
	private legacyJoin(): JoinMaterial | undefined {
		const s = this.state?.secrets;
		return this.clusterKey && s ? { signingKey: this.clusterKey, secrets: s } : undefined;
	}

	/** The store's join material (opened with the cluster secret), or the old files' before migration. */
	private joinMaterial(): JoinMaterial {
		const mgr = this.managerOnly();
		const legacy = this.legacyJoin();
		return legacy && !mgr.join.stored() ? legacy : mgr.join.material();
	}

	/**
	 * After a manager starts: get the cluster secret if this manager lacks it (joined through an
	 * older manager, or promoted: the hook calls acquireManagerKeys), and move the old files' join
	 * material into the store. Retries with backoff until done or the manager stops.
	 */
	private async settleManagerKeys(mgr: Manager): Promise<void> {
		await new Promise((r) => setImmediate(r)); // the caller makes it this.manager first
		for (let delay = 500; this.manager === mgr; delay = Math.min(delay * 2, 10_000)) {
			try {
				const keys = await this.acquireManagerKeys();
				const legacy = this.legacyJoin();
				if (keys && legacy) await this.migrateJoinKeys(mgr, legacy);
				if (keys !== false && !this.legacyJoin()) return;
			} catch (err) {
				this.log.warn({ err: (err as Error).message }, "manager keys not settled yet; retrying");
			}
			await new Promise((r) => setTimeout(r, delay).unref());
		}
	}

	/**
	 * A node whose role is manager gets the cluster secret from another manager and writes its own
	 * DATA/cluster/keys. True when it holds the keys, false when not yet, undefined when locked
	 * (autolock: the file is there, sealed). Called when the node becomes a manager (onBecomeManager).
	 */
	async acquireManagerKeys(): Promise<boolean | undefined> {
		if (this.keys) return true;
		const file = join(this.dir, "keys");
		if (keyFileExists(file)) return undefined;
		this.keys = await this.managerOnly().acquireKeys(file);
		return this.keys !== undefined;
	}

	/** A cluster made before the join keys moved into the store: seal them there, then drop the files. */
	private async migrateJoinKeys(mgr: Manager, legacy: JoinMaterial): Promise<void> {
		await mgr.store.waitForLeader(10_000);
		if (!mgr.join.stored()) await mgr.join.store(legacy, { ifMissing: true });
		// The secrets leave the state file first: cluster.key gone means the move is complete.
		delete this.state!.secrets;
		this.saveState();
		rmSync(join(this.dir, "cluster.key"), { force: true });
		this.clusterKey = undefined;
		this.log.info({}, "join keys moved into the store (sealed); cluster.key and the state file's secrets removed");
	}

	/**
	 * Admit a joiner whose proof checked out: its record goes into the nodes table (through the
	 * leader) before it hears back, so every manager admits it by the time it connects.
	 */
	private async grant(peer: string, role: Role, meta: Record<string, unknown>): Promise<JoinGrant> {
		const description = validateDescription(peer, meta);
		if (!this.manager) throw new NotManagerError();
		await this.manager.registerNode(joinRecord(peer, role, description));
		this.log.info({ peer, role, hostname: description.hostname }, "node joined");
		const addr = /^([\d.]+):(\d+)$/.exec(description.addr);
		if (role === "manager" && addr && this.manager) {
			// It starts its (empty) Raft right after this answer; the leader adds it as a non-voter and
			// autopilot makes it a voter once it is caught up and stable (or adds it, should this fail).
			const ma = `/ip4/${addr[1]}/tcp/${addr[2]}/p2p/${peer}`;
			this.manager
				.addManager(peer, ma)
				.then(() => this.log.info({ peer }, "manager added to Raft as a non-voter; autopilot gives it the vote"))
				.catch((err: Error) => this.log.warn({ peer, err: err.message }, "could not add the manager to Raft yet"));
		}
		return {
			clusterId: this.state!.clusterId,
			role,
			membershipKey: Buffer.from(this.state!.membershipKey, "base64"),
			members: this.directory.list(),
			// A manager must open the store's sealed values: it gets the secret every manager holds.
			...(role === "manager" && this.keys ? { clusterSecret: this.keys.clusterSecret } : {}),
		};
	}

	/** What this node tells the cluster about itself when it joins (and at init). */
	private description(): NodeDescription {
		return validateDescription(this.host.peerId, {
			hostname: this.o.hostname ?? hostname(),
			addr: this.advertiseAddr,
			labels: this.o.labels ?? {},
			platform: hostPlatform(),
			resources: { nanoCpus: cpus().length * 1e9, memoryBytes: totalmem() },
			engineVersion: VERSION,
		});
	}

	info() {
		return {
			nodeId: this.host.peerId,
			addrs: this.host.addrs(),
			clusterId: this.state?.clusterId ?? null,
			role: this.state?.role ?? null,
			raft: this.manager
				? {
						leader: this.manager.store.leader()?.id ?? null,
						isLeader: this.manager.store.isLeader(),
						term: this.manager.store.raftStats().term,
						index: this.manager.store.appliedIndex(),
					}
				: null,
			directory: { version: this.directory.version, nodes: this.directory.list().length },
			membership: this.membership ? { alive: this.membership.live().length } : null,
			...(this.locked ? { locked: true } : {}),
		};
	}

	async init(o: InitOptions) {
		if (this.state) throw new AlreadyInClusterError(this.state.clusterId);
		this.keys = newManagerKeys();
		writeKeyFile(join(this.dir, "keys"), this.keys);
		this.state = {
			clusterId: randomUUID(),
			role: "manager",
			membershipKey: randomBytes(32).toString("base64"),
			seeds: [],
		};
		this.saveState();
		await this.startCluster(true);
		const { unlockKey } = await this.manager!.initCluster(this.state.clusterId, o);
		await this.manager!.join.create();
		await this.manager!.registerNode(nodeRecord(this.host.peerId, "manager", this.description()));
		return {
			...this.info(),
			tokens: this.tokens(),
			advertise: this.advertiseAddr,
			...(unlockKey ? { unlockKey } : {}),
		};
	}

	/**
	 * `tsswarm init --force-new-cluster` (disaster recovery): stop this node's manager, rewrite its
	 * Raft configuration to itself alone from its own state (every record kept), start it again.
	 * The former servers' records stay (Down); node rm or autopilot takes care of them.
	 */
	async forceNewCluster() {
		if (!this.state) throw new NotInClusterError();
		if (this.state.role !== "manager" || !this.manager) throw new NotManagerError();
		this.log.warn({ cluster: this.state.clusterId }, "forcing a new cluster from this manager's state");
		await this.dispatch?.stop();
		this.dispatch = undefined;
		await this.manager.stop();
		this.manager = undefined;
		try {
			this.manager = await this.startManager({ forceNewCluster: true });
		} catch (err) {
			// Refused (nothing was changed): the manager runs on as it was.
			this.manager = await this.startManager({});
			throw err;
		} finally {
			this.startDispatch();
		}
		const recovered = await this.manager.recoverySummary();
		this.log.info({ ...recovered }, "cluster recovered: this manager is the only voter");
		return { ...this.info(), recovered };
	}

	private tokens() {
		const m = this.joinMaterial();
		const fp = fingerprint(m.signingKey.publicKey.raw);
		return { manager: formatToken(fp, m.secrets.manager), worker: formatToken(fp, m.secrets.worker) };
	}

	async join(token: string, addr: string) {
		if (this.state) throw new AlreadyInClusterError(this.state.clusterId);
		const { ip, port } = splitAddr(addr, "manager address");
		const grant = await requestJoin(this.host, `/ip4/${ip}/tcp/${port}`, token, { ...this.description() });
		// The grant's node list (checked: it crossed the wire) is our directory until a manager's
		// store (or, here on a manager, our own replica) says otherwise.
		const members = validateEntries("the join grant", grant.members);
		this.state = {
			clusterId: grant.clusterId,
			role: grant.role,
			membershipKey: Buffer.from(grant.membershipKey).toString("base64"),
			seeds: members.filter((m) => m.id !== this.host.peerId).map((m) => m.addr),
		};
		this.directory.set(members, 0);
		if (grant.clusterSecret) {
			this.keys = newManagerKeys(grant.clusterSecret);
			writeKeyFile(join(this.dir, "keys"), this.keys);
		}
		this.saveState();
		await this.startCluster();
		return { ...this.info() };
	}

	/** Any manager prints the tokens; `rotate` writes a new sealed secret through the leader (cluster-wide). */
	async joinToken(role: Role, rotate: boolean) {
		const mgr = this.managerOnly();
		if (rotate) await mgr.join.rotate(role);
		return { token: this.tokens()[role] };
	}

	/** The directory's nodes (gossip alone puts no one here), with their liveness from membership. */
	nodes() {
		if (!this.membership) throw new NotInClusterError();
		const voters = this.manager?.voters();
		const managerStatus = (id: string, alive: boolean) =>
			voters?.nonvoters.includes(id)
				? "Catching up"
				: !voters?.ids.includes(id)
					? ""
					: id === voters.leader
						? "Leader"
						: alive
							? "Reachable"
							: "Unreachable";
		const live = new Map(this.membership.all().map((m) => [m.id, m]));
		// On a manager the store has what the node said at join and what node update set.
		const rec = (id: string) => this.manager?.store.get("nodes", id)?.value;
		return this.directory.list().map((e) => {
			const m = live.get(e.id);
			const r = rec(e.id);
			return {
				managerStatus: managerStatus(e.id, m?.state === "alive"),
				id: e.id,
				addr: e.addr,
				state: m?.state ?? "unknown",
				role: e.role,
				platform: m?.meta.platform ?? r?.platform,
				self: e.id === this.host.peerId,
				version: m?.meta.version ?? r?.engineVersion,
				labels: r?.labels ?? m?.meta.labels ?? {},
				...(r ? { hostname: r.hostname, availability: r.availability, engineVersion: r.engineVersion } : {}),
			};
		});
	}

	/** `node rm`: a node that is not alive (or any, with force) leaves the directory everywhere. */
	async removeNode(id: string, force: boolean) {
		const mgr = this.managerOnly();
		const e = this.directory.get(id) ?? this.directory.list().find((x) => x.id.startsWith(id) && id.length >= 6);
		if (!e) throw new NotFoundError("node", id);
		if (e.id === this.host.peerId) throw new NodeRemoveRefusedError(e.id, "it is this node; use tsswarm leave");
		const state = this.membership?.all().find((m) => m.id === e.id)?.state;
		if (state === "alive" && !force)
			throw new NodeRemoveRefusedError(e.id, "it is not down; stop its agent first, or use --force");
		await mgr.removeNode(e.id);
		return { id: e.id };
	}

	/**
	 * `tsswarm leave`: tell the others this node leaves (signed, so they mark it left), stop the
	 * cluster parts and forget the cluster here. Its record stays (Down) until a manager runs
	 * `node rm`, as in Swarm. A manager first hands its vote away (leadership, then its place in
	 * the Raft configuration; its record becomes a worker's); with force it leaves even when that
	 * fails. The last manager leaves only with force, and is told what is lost.
	 */
	async leave(force: boolean) {
		if (!this.state || !this.membership) throw new NotInClusterError();
		let lost: ReturnType<Manager["lastManagerLoss"]>;
		if (this.state.role === "manager" && this.manager) {
			const { describeLoss, LastManagerError } = await import("./manager/index.ts");
			const members = new Map(this.membership.all().map((m) => [m.id, m.state]));
			lost = this.manager.lastManagerLoss((id) => members.get(id) === "left");
			if (lost && !force) throw new LastManagerError(`${describeLoss(lost)}; use --force to leave anyway`);
			// Handing the vote away rewrites this node's record: the role controller must not follow it.
			await this.roles?.stop();
			if (!lost)
				await this.manager.handOffVote(force ? 10_000 : 20_000).catch((err: Error) => {
					if (force) return this.log.warn({ err: err.message }, "leaving without handing the vote away (--force)");
					this.roles?.start(); // not leaving after all
					throw err;
				});
		}
		const clusterId = this.state.clusterId;
		const ms = this.o.leaveTimeoutMs ?? 1000;
		await Promise.race([this.membership.leave(ms / 2), new Promise((r) => setTimeout(r, ms).unref())]).catch(
			(err: Error) => this.log.warn({ err: err.message }, "leave failed"),
		);
		await this.stopCluster();
		this.keys = undefined;
		this.locked = false;
		for (const f of ["state.json", "cluster.key", "keys", "nodes.json"]) rmSync(join(this.dir, f), { force: true });
		rmSync(join(this.o.dataRoot, "raft"), { recursive: true, force: true });
		this.state = undefined;
		this.clusterKey = undefined;
		this.directory.set([], 0, false);
		this.log.info({ cluster: clusterId, ...(lost ? { lost } : {}) }, "left the cluster");
		return { left: clusterId, ...(lost ? { lost } : {}) };
	}

	private async stopCluster(o: StopOptions = {}): Promise<void> {
		await this.roles?.stop();
		this.roles = undefined;
		if (this.servingJoin) await this.host.unhandle(JOIN_PROTOCOL);
		this.servingJoin = false;
		await this.dispatch?.stop();
		this.dispatch = undefined;
		await this.logs?.stop();
		this.logs = undefined;
		// The containers keep running: a stopped agent is not a stopped node's workload (but for a
		// host shutting down, which would otherwise wait out each container init's stop timeout).
		if (o.stopTasks && this.worker) {
			const n = this.worker.worker.tasks().filter((t) => t.status.state === "running").length;
			this.log.info({ tasks: n }, "the host is shutting down: stopping this node's task containers");
		}
		await this.worker?.close({ stopContainers: o.stopTasks === true });
		this.worker = undefined;
		this.sync?.stop();
		this.sync = undefined;
		this.addresses?.stop();
		this.addresses = undefined;
		await this.membership?.stop();
		this.membership = undefined;
		await this.manager?.stop();
		this.manager = undefined;
	}

	/**
	 * Stop (SIGTERM, reboot, upgrade) is not leaving: the others see this node Down and it keeps
	 * its identity, its record and its place; it comes back as itself.
	 */
	async stop(o: StopOptions = {}): Promise<void> {
		this.log.info({ stopTasks: o.stopTasks === true, systemJobs: o.systemJobs }, "agent stopping");
		await this.stopCluster(o);
		await this.control.close();
		await this.host.stop();
		this.log.info({}, "agent stopped");
	}
}

export interface StopOptions {
	/** Stop this node's task containers too (the host shuts down); they run again at the next start. */
	stopTasks?: boolean;
	/** What systemd's job queue held when the agent was told to stop (logged). */
	systemJobs?: string;
}
