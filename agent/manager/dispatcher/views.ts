// The network views the leader sends with the assignments: per network, every endpoint with the
// underlay address of its node (FDB/ARP, flood list) and its services with their VIP, names and
// running backends (DNS, VIP load balancing); and the routing mesh (every ingress-published port →
// its backends on ingress), the same for every node. Kept from the store's change events: a change
// marks the networks it touches, and only those are computed again, once per flush.
import type { MeshPort, MeshView, NetworkView, ViewService } from "../../dispatch/index.ts";
import { isTerminal, type Service, type Task } from "../../services/index.ts";
import { nodeIngressAddresses } from "../allocator/index.ts";
import type { DispatchStore } from "./store.ts";

const bare = (cidr: string) => cidr.split("/")[0]!;
const vtepOf = (addr: string | undefined) => (addr ? /^([\d.]+):\d+$/.exec(addr)?.[1] : undefined);

/** A task an endpoint is counted for: placed, and neither ended nor being removed. */
const live = (t: Task) => t.nodeId !== undefined && !isTerminal(t.status.state) && t.desiredState !== "remove";

/** A task that takes traffic: running, meant to run, and healthy when it has a health check. */
export function isBackend(t: Task): boolean {
	if (t.status.state !== "running" || t.desiredState !== "running") return false;
	if (t.status.health) return t.status.health === "healthy";
	const hc = t.spec.container.healthcheck;
	return !hc || hc.test[0] === "NONE";
}

/** The ingress-published ports of a service (with their allocated published port). */
const meshPorts = (s: Service | undefined) =>
	(s?.endpoint?.ports ?? []).filter((p) => p.publishMode === "ingress" && p.publishedPort !== undefined);

export class NetworkViews {
	private readonly store: DispatchStore;
	/** Network id -> ids of tasks attached to it. */
	private readonly members = new Map<string, Set<string>>();
	/** Task id -> the networks it is counted on. */
	private readonly taskNets = new Map<string, string[]>();
	/** Network id -> services with a VIP on it (they resolve even with no task). */
	private readonly vipServices = new Map<string, Set<string>>();
	/** Service id -> the networks it has VIPs on (to unmark them when it changes). */
	private readonly serviceVips = new Map<string, string[]>();
	/** Services publishing ingress ports. */
	private readonly publishers = new Set<string>();
	private readonly cache = new Map<string, { view: NetworkView; key: string }>();
	/** Service id -> ingress addresses of its backends (from the ingress view's computation). */
	private ingressBackends = new Map<string, string[]>();
	private ingressId: string | undefined;
	private vteps = new Map<string, string>();
	private nodeAddrs = new Map<string, string>();
	private ports: MeshPort[] = [];
	private portsKey = "[]";
	private readonly dirty = new Set<string>();
	private meshDirty = true;
	private nodesDirty = true;

	constructor(store: DispatchStore) {
		this.store = store;
		this.rebuild();
	}

	/** Everything from the store again (start, snapshot restore). */
	rebuild(): void {
		this.members.clear();
		this.taskNets.clear();
		this.vipServices.clear();
		this.serviceVips.clear();
		this.publishers.clear();
		this.cache.clear();
		for (const t of this.store.tasks()) this.onTask(t.id, t);
		for (const s of this.store.services()) this.onService(s.id, false);
		this.nodesDirty = true;
		this.meshDirty = true;
		for (const n of this.store.networks()) this.dirty.add(n.id);
	}

	onTask(id: string, task: Task | undefined): void {
		for (const n of this.taskNets.get(id) ?? []) {
			this.members.get(n)?.delete(id);
			this.dirty.add(n);
		}
		const nets = task?.nodeId ? task.networks.filter((a) => a.addresses.length > 0).map((a) => a.networkId) : [];
		if (nets.length === 0) this.taskNets.delete(id);
		else this.taskNets.set(id, nets);
		for (const n of nets) {
			const m = this.members.get(n) ?? new Set<string>();
			this.members.set(n, m);
			m.add(id);
			this.dirty.add(n);
		}
	}

	onService(id: string, tasks = true): void {
		const s = this.store.service(id);
		for (const n of this.serviceVips.get(id) ?? []) {
			this.vipServices.get(n)?.delete(id);
			this.dirty.add(n);
		}
		const vips = s?.spec.endpoint.mode === "vip" ? (s.endpoint?.vips ?? []).map((v) => v.networkId) : [];
		this.serviceVips.set(id, vips);
		for (const n of vips) {
			const m = this.vipServices.get(n) ?? new Set<string>();
			this.vipServices.set(n, m);
			m.add(id);
			this.dirty.add(n);
		}
		if (!s) this.serviceVips.delete(id);
		// Its tasks carry its name, aliases and mode into every network they are on.
		if (tasks)
			for (const [n, m] of this.members)
				if (!this.dirty.has(n)) for (const t of m) if (this.isOf(t, id)) this.dirty.add(n);
		if (meshPorts(s).length > 0) this.publishers.add(id);
		else this.publishers.delete(id);
		this.meshDirty = true;
	}

	private isOf(taskId: string, serviceId: string): boolean {
		return this.store.task(taskId)?.value.serviceId === serviceId;
	}

	onNetwork(id: string): void {
		this.dirty.add(id);
		if (!this.store.network(id)) this.cache.delete(id);
		this.nodesDirty = true;
	}

	onNode(): void {
		this.nodesDirty = true;
	}

	/** Computes what changed since the last call; true when some view or the mesh did. */
	refresh(): boolean {
		let changed = false;
		if (this.nodesDirty) {
			this.nodesDirty = false;
			const vteps = new Map<string, string>();
			const nodes = this.store.nodeIds().flatMap((id) => this.store.node(id)?.value ?? []);
			for (const n of nodes) {
				const ip = vtepOf(n.addr);
				if (ip) vteps.set(n.id, ip);
			}
			const ingress = this.store.networks().find((n) => n.ingress);
			const addrs = ingress ? nodeIngressAddresses(ingress, nodes) : new Map<string, string>();
			const same = (a: Map<string, string>, b: Map<string, string>) =>
				a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
			if (!same(vteps, this.vteps)) for (const n of this.members.keys()) this.dirty.add(n);
			if (!same(addrs, this.nodeAddrs) || ingress?.id !== this.ingressId) {
				if (ingress) this.dirty.add(ingress.id);
				if (this.ingressId) this.dirty.add(this.ingressId);
				changed = true;
			}
			this.vteps = vteps;
			this.nodeAddrs = addrs;
			this.ingressId = ingress?.id;
			this.meshDirty = true;
		}
		for (const id of this.dirty) {
			if (id === this.ingressId) this.meshDirty = true;
			const view = this.compute(id);
			const key = view && JSON.stringify(view);
			if (!view || !key) {
				if (this.cache.delete(id)) changed = true;
			} else if (this.cache.get(id)?.key !== key) {
				this.cache.set(id, { view, key });
				changed = true;
			}
		}
		this.dirty.clear();
		if (this.meshDirty) {
			this.meshDirty = false;
			const ports: MeshPort[] = [];
			for (const sid of [...this.publishers].sort()) {
				const backends = this.ingressBackends.get(sid) ?? [];
				for (const p of meshPorts(this.store.service(sid)))
					ports.push({ protocol: p.protocol, publishedPort: p.publishedPort!, targetPort: p.targetPort, backends });
			}
			ports.sort((a, b) => a.publishedPort - b.publishedPort || (a.protocol < b.protocol ? -1 : 1));
			const key = JSON.stringify(ports);
			if (key !== this.portsKey) {
				this.ports = ports;
				this.portsKey = key;
				changed = true;
			}
		}
		return changed;
	}

	private compute(id: string): NetworkView | undefined {
		const net = this.store.network(id);
		if (!net) return undefined;
		const ingress = net.ingress;
		const endpoints: NetworkView["endpoints"] = [];
		const peers = new Set<string>();
		const services = new Map<string, ViewService>();
		const entry = (sid: string, fallbackName: string): ViewService | undefined => {
			let e = services.get(sid);
			if (e) return e;
			const s = this.store.service(sid);
			const mode = s?.spec.endpoint.mode ?? "vip";
			const vip = mode === "vip" ? s?.endpoint?.vips.find((v) => v.networkId === id)?.addr : undefined;
			e = { id: sid, name: (s?.spec.name ?? fallbackName).toLowerCase(), aliases: [], mode, backends: [] };
			if (vip) e.vip = bare(vip);
			services.set(sid, e);
			return e;
		};
		for (const tid of this.members.get(id) ?? []) {
			const t = this.store.task(tid)?.value;
			const a = t?.networks.find((x) => x.networkId === id);
			if (!t || !a || !live(t)) continue;
			const vtep = this.vteps.get(t.nodeId!);
			const address = bare(a.addresses[0]!);
			if (vtep) {
				endpoints.push({ address, vtep });
				peers.add(vtep);
			}
			const e = entry(t.serviceId, t.serviceName)!;
			for (const al of a.aliases) if (!e.aliases.includes(al.toLowerCase())) e.aliases.push(al.toLowerCase());
			if (isBackend(t)) e.backends.push(address);
		}
		for (const sid of this.vipServices.get(id) ?? []) if (this.store.service(sid)) entry(sid, sid);
		if (ingress) {
			// Every node has its own endpoint on ingress (the mesh's source address there).
			for (const [node, address] of this.nodeAddrs) {
				const vtep = this.vteps.get(node);
				if (!vtep) continue;
				endpoints.push({ address, vtep });
				peers.add(vtep);
			}
			this.ingressBackends = new Map([...services].map(([sid, e]) => [sid, e.backends.sort(byAddr)]));
		}
		return {
			networkId: id,
			peers: [...peers].sort(byAddr),
			endpoints: endpoints.sort((a, b) => byAddr(a.address, b.address)),
			// No DNS or VIPs on ingress: the mesh DNATs straight to the tasks.
			services: ingress
				? []
				: [...services.values()]
						.map((e) => ({ ...e, aliases: e.aliases.sort(), backends: e.backends.sort(byAddr) }))
						.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
		};
	}

	/** A network's current view (undefined: no such network). */
	view(id: string): NetworkView | undefined {
		return this.cache.get(id)?.view;
	}

	/** What the view is as a string, to tell whether a session has it. */
	key(id: string): string | undefined {
		return this.cache.get(id)?.key;
	}

	/** The ingress network when some port is published (every node then carries it). */
	get meshNetwork(): string | undefined {
		return this.ports.length > 0 ? this.ingressId : undefined;
	}

	mesh(nodeId: string): MeshView {
		const address = this.nodeAddrs.get(nodeId);
		return {
			...(this.ingressId ? { networkId: this.ingressId } : {}),
			...(address ? { address } : {}),
			ports: this.ports,
		};
	}
}

const toInt = (ip: string) => ip.split(".").reduce((n, o) => n * 256 + Number(o), 0);
const byAddr = (a: string, b: string) => toInt(a) - toInt(b);
