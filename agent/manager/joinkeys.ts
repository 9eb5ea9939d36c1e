// Any manager admits: the cluster's join material (the Ed25519 key that signs the join challenge,
// the manager and worker join secrets) lives in the store's cluster record, each field sealed with
// the cluster secret only managers hold. Here: sealing and opening it, writing it through the
// leader (init, migration, rotation), and handing the cluster secret to a node that became a manager.
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import type { Host } from "../host/index.ts";
import { hashSecret, newSecret, type Role } from "../join/index.ts";
import { KEY_BYTES, type ManagerKeys, open, seal } from "../keyring/index.ts";
import type { NodeDirectory } from "../nodes/index.ts";
import {
	CLUSTER_ID,
	type ClusterStore,
	NotFoundError,
	type SealedJoinKeys,
	type StoreLogger,
	VersionConflictError,
} from "../store/index.ts";
import { BadManagerRequestError, NoJoinKeysError, NotManagerPeerError } from "./errors.ts";
import { type LeaderRpc, MANAGER_PROTOCOL } from "./rpc.ts";

/** The join material in the clear: only in memory, on a manager that holds the cluster secret. */
export interface JoinMaterial {
	signingKey: Ed25519PrivateKey;
	secrets: { manager: string; worker: string };
}

const FIELDS = ["signingKey", "manager", "worker"] as const;
type Field = (typeof FIELDS)[number];

/** Binds a sealed field to its name and its cluster: a value moved elsewhere does not open. */
const aad = (clusterId: string, field: Field) => `tsswarm-join-keys-1:${clusterId}:${field}`;

export function sealJoinMaterial(secret: Uint8Array, clusterId: string, m: JoinMaterial): SealedJoinKeys {
	return {
		signingKey: seal(secret, privateKeyToProtobuf(m.signingKey), aad(clusterId, "signingKey")),
		manager: sealSecret(secret, clusterId, "manager", m.secrets.manager),
		worker: sealSecret(secret, clusterId, "worker", m.secrets.worker),
	};
}

const sealSecret = (secret: Uint8Array, clusterId: string, role: Role, s: string) =>
	seal(secret, Buffer.from(s), aad(clusterId, role));

/** Opens the record's fields; SealedDataError (naming the field, never the data) when one does not. */
export function openJoinKeys(secret: Uint8Array, clusterId: string, k: SealedJoinKeys): JoinMaterial {
	const key = privateKeyFromProtobuf(open(secret, k.signingKey, aad(clusterId, "signingKey")));
	if (key.type !== "Ed25519") throw new BadManagerRequestError("store", "the sealed signing key is not Ed25519");
	const text = (role: Role) => Buffer.from(open(secret, k[role], aad(clusterId, role))).toString();
	return { signingKey: key, secrets: { manager: text("manager"), worker: text("worker") } };
}

/** A fresh signing key and secrets (init). */
export async function newJoinMaterial(): Promise<JoinMaterial> {
	return {
		signingKey: await generateKeyPair("Ed25519"),
		secrets: { manager: newSecret(), worker: newSecret() },
	};
}

const JOIN_KEYS_SET = "cluster.joinKeys";
const CLUSTER_SECRET = "keys.clusterSecret";

const sealedField = (v: unknown, f: string): Uint8Array => {
	if (!(v instanceof Uint8Array) || v.length > 4096)
		throw new BadManagerRequestError("peer", `${f} must be sealed bytes`);
	return v;
};

/**
 * On the leader: set sealed fields of the cluster record's joinKeys (all three when there are none
 * yet). `ifMissing` leaves a record that has them alone (migration: the first writer wins).
 */
async function setJoinKeys(store: StoreView, body: Record<string, unknown>): Promise<{ index: number }> {
	const set = (body.set ?? {}) as Record<string, unknown>;
	const fields: Partial<SealedJoinKeys> = {};
	for (const f of FIELDS) if (set[f] !== undefined) fields[f] = sealedField(set[f], f);
	for (let attempt = 0; ; attempt++) {
		await store.barrier();
		const rec = store.get("cluster", CLUSTER_ID);
		if (!rec) throw new NotFoundError("cluster record", CLUSTER_ID);
		const have = rec.value.joinKeys;
		if (have && body.ifMissing === true) return { index: store.appliedIndex() };
		const next = { ...have, ...fields };
		if (!next.signingKey || !next.manager || !next.worker)
			throw new BadManagerRequestError("peer", "the first join keys must set signingKey, manager and worker");
		try {
			const r = await store.commit([
				{
					op: "update",
					table: "cluster",
					id: CLUSTER_ID,
					version: rec.version,
					value: { ...rec.value, joinKeys: next as SealedJoinKeys },
				},
			]);
			return { index: r.index };
		} catch (err) {
			// A network create moved the record's VNI cursor meanwhile: read it again.
			if (!(err instanceof VersionConflictError) || attempt >= 5) throw err;
		}
	}
}

/** What JoinKeys uses of the store, the leader RPC and the directory (tests give in-memory ones). */
type StoreView = Pick<ClusterStore, "get" | "barrier" | "commit" | "appliedIndex" | "waitForApplied">;

export interface JoinKeysOptions {
	store: StoreView;
	rpc: Pick<LeaderRpc, "register" | "call">;
	directory: Pick<NodeDirectory, "isManager">;
	clusterId: string;
	logger: StoreLogger;
	/** This manager's keys, when it holds them (they may arrive after start). */
	keys(): ManagerKeys | undefined;
}

/** The join material as this manager sees it in its replica, and the ways to change it. */
export class JoinKeys {
	private readonly o: JoinKeysOptions;
	private cache: { version: number; secret: Uint8Array; material: JoinMaterial } | undefined;

	constructor(o: JoinKeysOptions) {
		this.o = o;
		o.rpc.register(JOIN_KEYS_SET, (body) => setJoinKeys(o.store, body));
		// Any manager holding the secret answers (from its own keys: no leader needed); the asker
		// must be a manager by its record. Workers are members, so they reach this and are refused.
		o.rpc.register(
			CLUSTER_SECRET,
			async (_body, from) => {
				if (o.store.get("nodes", from)?.value.role !== "manager" && !o.directory.isManager(from))
					throw new NotManagerPeerError(from, CLUSTER_SECRET);
				const k = o.keys();
				if (!k) throw new NoJoinKeysError("this manager does not hold the cluster secret");
				o.logger.info({ peer: from }, "cluster secret handed to a manager");
				return { clusterSecret: k.clusterSecret };
			},
			{ members: true, local: true },
		);
	}

	/** Whether this manager can serve the join protocol now (the gater asks on every newcomer). */
	ready(): boolean {
		return this.o.keys() !== undefined && this.o.store.get("cluster", CLUSTER_ID)?.value.joinKeys !== undefined;
	}

	/** Whether the store holds join keys at all (sealed; no cluster secret needed to know). */
	stored(): boolean {
		return this.o.store.get("cluster", CLUSTER_ID)?.value.joinKeys !== undefined;
	}

	/** The material opened from this replica (cached per record version), or why not. */
	material(): JoinMaterial {
		const k = this.o.keys();
		if (!k) throw new NoJoinKeysError("this manager does not hold the cluster secret yet");
		const rec = this.o.store.get("cluster", CLUSTER_ID);
		if (!rec?.value.joinKeys) throw new NoJoinKeysError("the cluster's join keys are not in this manager's store yet");
		const c = this.cache;
		if (c && c.version === rec.version && c.secret === k.clusterSecret) return c.material;
		const material = openJoinKeys(k.clusterSecret, this.o.clusterId, rec.value.joinKeys);
		this.cache = { version: rec.version, secret: k.clusterSecret, material };
		return material;
	}

	secretHashes(): { manager: string; worker: string } {
		const s = this.material().secrets;
		return { manager: hashSecret(s.manager), worker: hashSecret(s.worker) };
	}

	/** Write the whole material (init; migration with `ifMissing`), sealed here, through the leader. */
	async store(m: JoinMaterial, o: { ifMissing?: boolean } = {}): Promise<void> {
		const k = this.o.keys();
		if (!k) throw new NoJoinKeysError("this manager does not hold the cluster secret");
		const set = sealJoinMaterial(k.clusterSecret, this.o.clusterId, m);
		await this.write({ set: { ...set }, ifMissing: o.ifMissing === true });
	}

	/** A new cluster's material (init), written sealed. */
	async create(): Promise<void> {
		await this.store(await newJoinMaterial());
	}

	/** `join-token ROLE --rotate`: a new secret, in effect on every manager once applied there. */
	async rotate(role: Role): Promise<void> {
		this.material(); // refuse early (no keys, no record) rather than write what cannot be read
		const k = this.o.keys()!;
		const sealed = sealSecret(k.clusterSecret, this.o.clusterId, role, newSecret());
		await this.write({ set: { [role]: sealed } });
		this.o.logger.info({ role }, "join token rotated");
	}

	private async write(body: Record<string, unknown>): Promise<void> {
		const r = (await this.o.rpc.call(JOIN_KEYS_SET, body)) as { index: number };
		await this.o.store.waitForApplied(r.index);
	}
}

/**
 * For a node that is a manager without the cluster secret (promoted, or joined through a manager
 * of an older version): ask the other managers in the directory, one after the other, over
 * /tsswarm/manager/1 (Noise), until one gives it. Undefined when none did.
 */
export async function fetchClusterSecret(o: {
	host: Host;
	directory: NodeDirectory;
	self: string;
	logger: StoreLogger;
	timeoutMs?: number;
}): Promise<Uint8Array | undefined> {
	for (const m of o.directory.list()) {
		if (m.role !== "manager" || m.id === o.self) continue;
		try {
			// By id: the directory's address is only a hint (the peer store follows membership).
			const reply = (await o.host.session(
				m.id,
				MANAGER_PROTOCOL,
				async (io) => {
					io.send({ kind: CLUSTER_SECRET, body: {} });
					return io.next();
				},
				{ timeoutMs: o.timeoutMs ?? 5_000, hint: m.addr },
			)) as { ok?: { clusterSecret?: unknown }; error?: { code?: string; message?: string } } | null;
			const s = reply?.ok?.clusterSecret;
			if (s instanceof Uint8Array && s.length === KEY_BYTES) return new Uint8Array(s);
			o.logger.debug({ peer: m.id, code: reply?.error?.code }, "no cluster secret from this manager");
		} catch (err) {
			o.logger.debug({ peer: m.id, err: (err as Error).message }, "could not ask this manager for the cluster secret");
		}
	}
	return undefined;
}
