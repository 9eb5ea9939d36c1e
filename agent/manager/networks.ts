// Networks as the manager keeps them: specs are validated here, then the leader allocates the
// VNI, subnet and gateway (overlay-net's Allocator, fed from the store) and commits the record in
// the same transaction that advances the cluster's VNI cursor, so two creates can never collide.
import { randomBytes } from "node:crypto";
import { Allocator, parseCidr } from "../../overlay-net/ipam/index.ts";
import type { NetworkInspect } from "../api/index.ts";
import {
	CLUSTER_ID,
	type Cluster,
	type ClusterStore,
	type Network,
	NotFoundError,
	type StoredRecord,
} from "../store/index.ts";
import { InvalidNetworkSpecError } from "./errors.ts";

export interface NetworkSpec {
	name: string;
	driver: "overlay";
	subnet?: string;
	gateway?: string;
	internal: boolean;
	attachable: boolean;
	ingress: boolean;
	labels: Record<string, string>;
	options: Record<string, string>;
}

/** The stored network and cluster records (their types and validators live in agent/store). */
export type NetworkRecord = Network;
export type ClusterRecord = Cluster;
export { CLUSTER_ID };

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const OPTIONS = new Set(["encrypted", "mtu"]);

const strMap = (v: unknown, what: string): Record<string, string> => {
	if (v === undefined) return {};
	if (!v || typeof v !== "object" || Array.isArray(v)) throw new InvalidNetworkSpecError(`${what} must be a map`);
	for (const [k, x] of Object.entries(v)) {
		if (typeof x !== "string" || k.length === 0 || k.length > 256 || x.length > 4096)
			throw new InvalidNetworkSpecError(`${what} ${JSON.stringify(k)} must map a key to a string`);
	}
	return { ...(v as Record<string, string>) };
};

/** Checks a network spec from the API; throws InvalidNetworkSpecError naming what is wrong. */
export function validateNetworkSpec(raw: Record<string, unknown>): NetworkSpec {
	const name = raw.name;
	if (typeof name !== "string" || !NAME.test(name))
		throw new InvalidNetworkSpecError(
			`name ${JSON.stringify(name)} must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit`,
		);
	const driver = raw.driver ?? "overlay";
	if (driver !== "overlay")
		throw new InvalidNetworkSpecError(`driver ${JSON.stringify(driver)} is not supported (only overlay)`);
	const bool = (k: string) => {
		if (raw[k] !== undefined && typeof raw[k] !== "boolean")
			throw new InvalidNetworkSpecError(`${k} must be true or false`);
		return raw[k] === true;
	};
	const spec: NetworkSpec = {
		name,
		driver,
		internal: bool("internal"),
		attachable: bool("attachable"),
		ingress: bool("ingress"),
		labels: strMap(raw.labels, "label"),
		options: strMap(raw.options, "option"),
	};
	for (const k of Object.keys(spec.options))
		if (!OPTIONS.has(k)) throw new InvalidNetworkSpecError(`unknown option ${k} (known: ${[...OPTIONS].join(", ")})`);
	if (spec.options.mtu !== undefined && !/^\d{3,5}$/.test(spec.options.mtu))
		throw new InvalidNetworkSpecError(`mtu ${spec.options.mtu} is not a number of bytes`);
	if (raw.subnet !== undefined) {
		if (typeof raw.subnet !== "string") throw new InvalidNetworkSpecError("subnet must be a CIDR string");
		spec.subnet = parseCidr(raw.subnet).text;
	}
	if (raw.gateway !== undefined) {
		if (typeof raw.gateway !== "string") throw new InvalidNetworkSpecError("gateway must be an IPv4 address");
		if (!spec.subnet) throw new InvalidNetworkSpecError("a gateway needs a --subnet");
		spec.gateway = raw.gateway;
	}
	if (spec.ingress && spec.internal) throw new InvalidNetworkSpecError("the ingress network cannot be internal");
	return spec;
}

const newId = () => randomBytes(16).toString("hex").slice(0, 25);

const toAlloc = (r: StoredRecord<Network>) => {
	const n = r.value;
	return {
		id: r.id,
		name: n.name,
		vni: n.vni,
		subnet: n.subnet,
		gateway: n.gateway,
		internal: n.internal,
		...(n.ingress ? { ingress: true } : {}),
		addresses: {},
	};
};

/** On the leader: allocate and commit a new network. */
export async function createNetwork(store: ClusterStore, spec: NetworkSpec): Promise<StoredRecord<Network>> {
	// Read what every earlier write left, so the allocation sees all networks.
	await store.barrier();
	const cluster = store.get("cluster", CLUSTER_ID);
	if (!cluster) throw new NotFoundError("cluster record", CLUSTER_ID);
	const c = cluster.value;
	if (spec.ingress && store.list("networks").some((r) => r.value.ingress))
		throw new InvalidNetworkSpecError("an ingress network already exists; remove it first");
	// A manager never touches the kernel: encryption is the nodes' to set up, and no data plane
	// of ours encrypts yet (overlay-net/ENCRYPTION.md), so say so instead of storing a promise.
	if (spec.options.encrypted !== undefined)
		throw new InvalidNetworkSpecError(
			"encrypted overlay networks are not supported yet (no node data plane encrypts; see overlay-net/ENCRYPTION.md)",
		);
	const alloc = new Allocator({
		pools: c.addrPools,
		subnetPrefix: c.subnetSize,
		nextVni: c.nextVni,
		networks: Object.fromEntries(store.list("networks").map((r) => [r.id, toAlloc(r)])),
	});
	const id = newId();
	const n = alloc.createNetwork({
		id,
		name: spec.name,
		subnet: spec.subnet,
		gateway: spec.gateway,
		internal: spec.internal,
		ingress: spec.ingress,
	});
	const value: Network = {
		...spec,
		id,
		vni: n.vni,
		subnet: n.subnet,
		gateway: n.gateway,
		createdAt: new Date().toISOString(),
	};
	await store.commit([
		{
			op: "update",
			table: "cluster",
			id: CLUSTER_ID,
			version: cluster.version,
			value: { ...c, nextVni: alloc.toJSON().nextVni },
		},
		{ op: "create", table: "networks", id, value },
	]);
	return store.get("networks", id)!;
}

/** A network by full id, unique id prefix or name (like docker). */
export function findNetwork(store: ClusterStore, ref: string): StoredRecord<Network> {
	const exact = store.get("networks", ref) ?? store.byName("networks", ref);
	if (exact) return exact;
	const all = store.list("networks");
	const byPrefix = ref.length >= 3 ? all.filter((r) => r.id.startsWith(ref)) : [];
	if (byPrefix.length === 1) return byPrefix[0]!;
	if (byPrefix.length > 1)
		throw new InvalidNetworkSpecError(`network id prefix ${ref} is ambiguous: ${byPrefix.map((r) => r.id).join(", ")}`);
	throw new NotFoundError("network", ref);
}

/** On the leader: remove a network (services will pin theirs once they exist). */
export async function removeNetwork(store: ClusterStore, ref: string): Promise<{ id: string; index: number }> {
	await store.barrier();
	const r = findNetwork(store, ref);
	const { index } = await store.commit([{ op: "delete", table: "networks", id: r.id, version: r.version }]);
	return { id: r.id, index };
}

/** What `network inspect` shows (see api/types.ts). */
export function inspectNetwork(r: StoredRecord<Network>): NetworkInspect {
	const n = r.value;
	return {
		Name: n.name,
		Id: r.id,
		Created: n.createdAt,
		Scope: "swarm",
		Driver: n.driver,
		EnableIPv6: false,
		IPAM: { Driver: "default", Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
		Internal: n.internal,
		Attachable: n.attachable,
		Ingress: n.ingress,
		Options: { "com.docker.network.driver.overlay.vxlanid_list": String(n.vni), ...n.options },
		Labels: n.labels,
		Version: r.version,
	};
}
