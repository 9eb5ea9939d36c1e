// The leader's network views as this node's kernel holds them: per built network the remote
// endpoints (FDB/ARP) and flood list, the VIP rules of its task namespaces and a DNS server on its
// gateway; and the routing mesh (the node's ingress endpoint, every published port). Each piece is
// applied only when its part of the view changed. TaskNetworking calls in here under its lock.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { NetworkAlloc, OverlayDriver, PublishedPort, ServiceRecord, VipRule } from "../../overlay-net/index.ts";
import type { MeshView, NetworkView } from "../dispatch/index.ts";
import type { AssignedNetwork } from "./networking.ts";

const execFileP = promisify(execFile);

const toAlloc = ({ peers: _, ...n }: AssignedNetwork): NetworkAlloc => ({ ...n, addresses: {} });

interface Applied {
	fdb?: string;
	vips?: string;
	dns?: boolean;
}

export class ViewState {
	private readonly driver: OverlayDriver;
	private readonly upstreams: string[];
	private views: ReadonlyMap<string, NetworkView> = new Map();
	private mesh: MeshView = { ports: [] };
	/** Network id -> names (service names, aliases) -> the DNS record. */
	private names = new Map<string, Map<string, ServiceRecord>>();
	private readonly applied = new Map<string, Applied>();
	/** The node's own ingress endpoint and the ports published, as the kernel has them. */
	private node: { networkId: string; address: string } | undefined;
	private published: string | undefined;

	constructor(driver: OverlayDriver, upstreams: string[]) {
		this.driver = driver;
		this.upstreams = upstreams;
	}

	set(views: ReadonlyMap<string, NetworkView>, mesh: MeshView): void {
		this.views = views;
		this.mesh = mesh;
		const names = new Map<string, Map<string, ServiceRecord>>();
		for (const [id, v] of views) {
			const m = new Map<string, ServiceRecord>();
			for (const s of v.services) {
				const rec: ServiceRecord = { tasks: s.backends, endpointMode: s.mode, ...(s.vip ? { vip: s.vip } : {}) };
				for (const name of [s.name, ...s.aliases]) if (!m.has(name)) m.set(name, rec);
			}
			names.set(id, m);
		}
		this.names = names;
	}

	/** What a network's DNS server answers for `name` (lowercase). */
	lookup(networkId: string, name: string): ServiceRecord | undefined {
		return this.names.get(networkId)?.get(name);
	}

	vipRules(v: NetworkView | undefined): VipRule[] {
		return (v?.services ?? []).flatMap((s) =>
			s.vip && s.mode === "vip" ? [{ vip: s.vip, backends: s.backends }] : [],
		);
	}

	meshRules(ingress: NetworkAlloc): { ports: PublishedPort[]; via: NetworkAlloc } {
		return { ports: this.mesh.ports.map((p) => ({ ...p })), via: ingress };
	}

	/** Whether the mesh keeps this network built with no task on it. */
	holds(networkId: string): boolean {
		return this.mesh.ports.length > 0 && this.mesh.networkId === networkId;
	}

	/** The network was removed from this node. */
	dropped(networkId: string): void {
		this.applied.delete(networkId);
		if (this.node?.networkId === networkId) {
			this.node = undefined;
			this.published = undefined;
		}
	}

	/** After reconcile took the network over with the views: only DNS is left to start. */
	async adopted(n: AssignedNetwork, nodeAddress: string | undefined): Promise<void> {
		const v = this.views.get(n.id);
		this.applied.set(n.id, { fdb: fdbKey(n, v), vips: JSON.stringify(this.vipRules(v)) });
		if (nodeAddress) {
			this.node = { networkId: n.id, address: nodeAddress };
			this.published = JSON.stringify(this.mesh.ports);
		}
		await this.applyNetwork(n, false);
	}

	/** Brings one built network to its view (`fresh`: it was just created, nothing applied yet). */
	async applyNetwork(n: AssignedNetwork, fresh: boolean): Promise<void> {
		if (fresh) this.applied.delete(n.id);
		const a = toAlloc(n);
		const v = this.views.get(n.id);
		const done = this.applied.get(n.id) ?? {};
		this.applied.set(n.id, done);
		const fdb = fdbKey(n, v);
		if (done.fdb !== fdb) {
			await this.driver.setPeers(a, v?.peers ?? n.peers ?? []);
			await this.driver.setEndpoints(a, v?.endpoints ?? []);
			done.fdb = fdb;
		}
		if (n.ingress) return;
		const rules = this.vipRules(v);
		const vips = JSON.stringify(rules);
		if (done.vips !== vips) {
			await this.driver.setVips(a, rules);
			done.vips = vips;
		}
		if (!done.dns) {
			await this.driver.serveDns(a, (name) => this.lookup(n.id, name), this.upstreams);
			done.dns = true;
		}
	}

	/** The routing mesh on this node: its ingress endpoint and the published ports (none: unpublished). */
	async applyMesh(ingress: AssignedNetwork | undefined): Promise<void> {
		if (!ingress || this.mesh.ports.length === 0) {
			if (this.published !== undefined) await this.driver.unpublishAll();
			this.published = undefined;
			return;
		}
		const a = toAlloc(ingress);
		const address = this.mesh.address;
		if (this.node && (this.node.networkId !== ingress.id || this.node.address !== address)) {
			// A new address (the node set changed): the old endpoint goes first.
			const ns = this.driver.o.nodeNetns;
			await execFileP("ip", [...(ns ? ["-n", ns] : []), "link", "delete", this.driver.nodeIf(a)]).catch(() => {});
			this.node = undefined;
		}
		if (!address) return; // no address left for this node: it cannot take part in the mesh
		if (!this.node) {
			await this.driver.attachNode(a, address);
			this.node = { networkId: ingress.id, address };
			this.published = undefined;
		}
		const key = JSON.stringify(this.mesh.ports);
		if (this.published !== key) {
			await this.driver.publish(
				this.mesh.ports.map((p) => ({ ...p })),
				a,
			);
			this.published = key;
		}
	}
}

const fdbKey = (n: AssignedNetwork, v: NetworkView | undefined) =>
	JSON.stringify([v?.peers ?? n.peers ?? [], v?.endpoints ?? []]);
