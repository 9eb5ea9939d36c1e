// The per-node data plane of overlay networks, as Docker's overlay driver does it: for each
// network a sandbox namespace holding a bridge and a VXLAN device (VNI, UDP 4789, learning off,
// MTU = underlay - 50). The VXLAN device is created in the node's namespace, where the underlay
// address lives, and then moved into the sandbox; it keeps sending through the node's stack.
// Tasks attach through veth pairs. Peers and endpoints are programmed explicitly (no multicast,
// see fdb.ts). Everything is named from a per-node prefix, so reconcile() can find and remove what
// a crashed agent left. The node is either a named namespace (the lab) or, with nodeNetns unset,
// this process's own namespace (a real host).
import { DnsServer, type ServiceRecord } from "./dns.ts";
import { checkEncryptionSupport } from "./encryption.ts";
import { OverlayEncryptionUnsupportedError, PoolExhaustedError, PortConflictError } from "./errors.ts";
import {
	bindInNetns,
	exec,
	inNetns,
	ipBatch,
	ipNs,
	isGone,
	linksIn,
	netnsList,
	nftApply,
	nftDeleteTable,
} from "./exec.ts";
import { macFor, programEndpoints, programFlood, type RemoteEndpoint } from "./fdb.ts";
import type { NetworkAlloc } from "./ipam.ts";
import {
	EGRESS_TABLE,
	egressRuleset,
	HOST_TABLE,
	type HostPublishedPort,
	hostRuleset,
	LB_TABLE,
	MESH_TABLE,
	meshRuleset,
	type PublishedPort,
	TUNNEL_TABLE,
	tunnelRuleset,
	type VipRule,
	vipRuleset,
} from "./lb.ts";
import { type ReconcileOptions, type ReconcileResult, reconcileDriver } from "./reconcile.ts";
import { detectUnderlay, egressSlots, freeSlot, slotAddresses } from "./underlay.ts";

export interface DriverOptions {
	/** Namespace holding the node's underlay interface (undefined: this process's own, i.e. the host). */
	nodeNetns?: string;
	underlayIp: string;
	/** Default: the device that holds underlayIp. */
	underlayDev?: string;
	/** Default: that device's MTU. */
	underlayMtu?: number;
	/** Unique per node; sandbox namespaces are PREFIX-ovVNI. */
	prefix: string;
}

const VXLAN_PORT = 4789;
const VXLAN_OVERHEAD = 50;
/** @internal */
export const BRIDGE_NF_OFF = ["iptables", "ip6tables", "arptables"].map((f) => `net.bridge.bridge-nf-call-${f}=0`);

export class OverlayDriver {
	/** @internal for reconcile.ts */
	readonly o: DriverOptions;
	private ul: { dev: string; mtu: number } | undefined;
	/** @internal Networks this driver has built or taken over, by VNI. */
	readonly networks = new Map<number, NetworkAlloc>();
	/** @internal Task namespace -> the VNIs it is attached to on this node. */
	readonly endpoints = new Map<string, Set<number>>();
	/** @internal VNI -> the service VIPs of that network. */
	readonly vips = new Map<number, VipRule[]>();
	private readonly resolvers = new Map<number, DnsServer>();
	private meshPorts: PublishedPort[] = [];
	private hostPorts: HostPublishedPort[] = [];
	private egressLock: Promise<unknown> = Promise.resolve();

	constructor(o: DriverOptions) {
		this.o = { ...o };
	}

	sandbox(n: Pick<NetworkAlloc, "vni">): string {
		return `${this.o.prefix}-ov${n.vni}`;
	}

	get mtu(): number {
		return (this.o.underlayMtu ?? this.ul?.mtu ?? 1500) - VXLAN_OVERHEAD;
	}

	/** The underlay device and MTU: as given, else read from the kernel (once). */
	async underlay(): Promise<{ dev: string; mtu: number }> {
		if (!this.ul) {
			const given = this.o.underlayDev && this.o.underlayMtu;
			const found = given ? undefined : await detectUnderlay(this.o.nodeNetns, this.o.underlayIp);
			this.ul = { dev: this.o.underlayDev ?? found!.dev, mtu: this.o.underlayMtu ?? found!.mtu };
		}
		return this.ul;
	}

	/** The target of `ip link ... netns X` for the node: its name, or a pid living in it (this process). */
	private get nodeRef(): string {
		return this.o.nodeNetns ?? String(process.pid);
	}

	async createNetwork(n: NetworkAlloc, o: { encrypted?: boolean } = {}): Promise<void> {
		if (o.encrypted) {
			const s = await checkEncryptionSupport();
			throw new OverlayEncryptionUnsupportedError(
				`the kernel has ${s.wireguard ? "WireGuard" : "IPsec AEAD"}, but the encrypted data path is not built yet; see overlay-net/ENCRYPTION.md`,
				["tsswarm encrypted data path"],
			);
		}
		const { dev } = await this.underlay();
		const sb = this.sandbox(n);
		const vx = `vx${n.vni}`;
		const prefix = n.subnet.split("/")[1];
		await exec(["ip", "netns", "add", sb]);
		try {
			await this.quietBridge(sb);
			await ipBatch(this.o.nodeNetns, [
				`link add ${vx} type vxlan id ${n.vni} dstport ${VXLAN_PORT} local ${this.o.underlayIp} dev ${dev} nolearning`,
				`link set ${vx} mtu ${this.mtu} netns ${sb}`,
			]);
			// IPv6 is off on overlay links (addrgenmode none: no link-local address, so no DAD,
			// router or neighbour solicitations flooded to every peer); the overlay is IPv4.
			await ipBatch(sb, [
				"link set lo up",
				"link add br0 type bridge",
				"link set br0 addrgenmode none",
				`link set ${vx} addrgenmode none`,
				`link set br0 mtu ${this.mtu}`,
				`link set ${vx} master br0`,
				`addr add ${n.gateway}/${prefix} dev br0`,
				`link set ${vx} up`,
				"link set br0 up",
			]);
			// The bridge answers ARP for remote endpoints from its neighbour table (fdb.ts).
			await exec(["bridge", "-n", sb, "link", "set", "dev", vx, "neigh_suppress", "on"]);
			await this.tunnelNotrack();
			if (!n.internal && !n.ingress) await this.plugEgress(n);
		} catch (err) {
			await this.dropSandbox(sb);
			await exec(["ip", ...ipNs(this.o.nodeNetns), "link", "delete", vx]).catch(() => {});
			throw err;
		}
		this.networks.set(n.vni, n);
	}

	/**
	 * A way out for a network that is not --internal (Docker's docker_gwbridge, done with one veth
	 * per network): the sandbox routes through the node, which masquerades. The link gets a /31
	 * from 169.254.0.0/16, the lowest one no other egress link of the node holds.
	 */
	private plugEgress(n: NetworkAlloc): Promise<void> {
		const work = this.egressLock.then(async () => {
			const slot = freeSlot(await egressSlots(this.o.nodeNetns));
			if (slot === undefined) throw new PoolExhaustedError("egress link slot (169.254.0.0/16) on this node");
			const { sandbox: inSb, node: inNode } = slotAddresses(slot);
			const sb = this.sandbox(n);
			await ipBatch(sb, [
				`link add ovg${n.vni} type veth peer name ovh${n.vni} netns ${this.nodeRef}`,
				`addr add ${inSb}/31 dev ovg${n.vni}`,
				`link set ovg${n.vni} up`,
				`route add default via ${inNode} dev ovg${n.vni}`,
			]);
			await ipBatch(this.o.nodeNetns, [
				`addr add ${inNode}/31 dev ovh${n.vni}`,
				`link set ovh${n.vni} up`,
				`route add ${n.subnet} via ${inSb} dev ovh${n.vni}`,
			]);
		});
		this.egressLock = work.catch(() => {});
		return work.then(async () => {
			await exec(["nsenter", `--net=/run/netns/${this.sandbox(n)}`, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
			await this.forwarding();
			await nftApply(this.o.nodeNetns, egressRuleset());
		});
	}

	/**
	 * The sandbox has no netfilter rules, so its bridge skips the IPv4/IPv6/ARP hooks that
	 * br_netfilter, where loaded, runs on every bridged frame (per-packet work on both nodes; see
	 * README, Figures). `-e`: without br_netfilter the keys do not exist.
	 * @internal
	 */
	quietBridge(sb: string): Promise<string> {
		return exec(inNetns(sb, ["sysctl", "-qew", ...BRIDGE_NF_OFF]));
	}

	/** @internal The node's VXLAN packets skip conntrack (lb.ts, tunnelRuleset). */
	tunnelNotrack(): Promise<string> {
		return nftApply(this.o.nodeNetns, tunnelRuleset(this.o.underlayIp, VXLAN_PORT));
	}

	private forwarding(): Promise<string> {
		return exec(inNetns(this.o.nodeNetns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]));
	}

	/** Flood list: the other nodes that carry this network (underlay addresses); carries broadcasts. */
	async setPeers(n: NetworkAlloc, peers: string[]): Promise<void> {
		await programFlood(
			this.sandbox(n),
			`vx${n.vni}`,
			peers.filter((p) => p !== this.o.underlayIp),
		);
	}

	/**
	 * The network's endpoints on other nodes (tasks, and nodes' ingress endpoints), each with its
	 * node's underlay address: unicast to them then goes straight to that node, never flooded.
	 * Entries of endpoints no longer listed are removed; local endpoints are skipped.
	 */
	async setEndpoints(n: Pick<NetworkAlloc, "vni">, endpoints: RemoteEndpoint[]): Promise<void> {
		await programEndpoints(
			this.sandbox(n),
			`vx${n.vni}`,
			endpoints.filter((e) => e.vtep !== this.o.underlayIp),
		);
	}

	/** @internal The veth name in the sandbox for a task namespace (or the node: undefined). */
	vethName(n: Pick<NetworkAlloc, "vni">, taskNetns: string | undefined): string {
		// ifnames are at most 15 characters: a short hash of the task namespace and the VNI.
		let h = 0;
		for (const c of `${taskNetns ?? `@node:${this.o.nodeNetns ?? ""}`}/${n.vni}`)
			h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
		return `ve${h.toString(36)}`.slice(0, 15);
	}

	/**
	 * Plug a task's network namespace into the network with its allocated address. The default
	 * route goes to the first network with a way out the task is attached to (not internal, not
	 * ingress) unless `defaultRoute` says otherwise; true replaces an existing one.
	 */
	async attachTask(
		n: NetworkAlloc,
		taskNetns: string,
		address: string,
		ifname = "eth0",
		o: { defaultRoute?: boolean } = {},
	): Promise<void> {
		await this.plug(n, taskNetns, address, ifname, await this.defaultRouteFor(n, taskNetns, o.defaultRoute));
		const nets = this.endpoints.get(taskNetns) ?? new Set();
		nets.add(n.vni);
		this.endpoints.set(taskNetns, nets);
		await this.applyVips(taskNetns);
	}

	/**
	 * Whether attaching to `n` should set the task's default route: the first network with a way
	 * out does, unless the caller says otherwise.
	 * @internal
	 */
	async defaultRouteFor(n: NetworkAlloc, netns: string, override?: boolean): Promise<boolean> {
		if (override !== undefined) return override;
		if (n.internal || n.ingress) return false;
		return (await exec(["ip", "-n", netns, "route", "show", "default"])).trim() === "";
	}

	/** @internal */
	async plug(
		n: NetworkAlloc,
		netns: string | undefined,
		address: string,
		ifname: string,
		route: boolean,
	): Promise<void> {
		await this.underlay();
		const sb = this.sandbox(n);
		// The node's own endpoint is named as reconcile expects it, whether the node is a named namespace or not.
		const host = this.vethName(n, netns === this.o.nodeNetns ? undefined : netns);
		const tmp = `t${host.slice(2)}`.slice(0, 15);
		await ipBatch(sb, [
			`link add ${host} mtu ${this.mtu} type veth peer name ${tmp} netns ${netns ?? this.nodeRef}`,
			`link set ${host} addrgenmode none`,
			`link set ${host} master br0`,
			`link set ${host} up`,
		]);
		const prefix = n.subnet.split("/")[1];
		try {
			await ipBatch(netns, [
				...(netns ? ["link set lo up"] : []),
				`link set ${tmp} name ${ifname}`,
				`link set ${ifname} mtu ${this.mtu}`,
				`link set ${ifname} address ${macFor(address)}`,
				`link set ${ifname} addrgenmode none`,
				`addr add ${address}/${prefix} dev ${ifname}`,
				`link set ${ifname} up`,
				...(route ? [`route replace default via ${n.gateway} dev ${ifname}`] : []),
			]);
		} catch (err) {
			await ipBatch(sb, [`link delete ${host}`]).catch(() => {});
			throw err;
		}
	}

	/** Unplugs a task (idempotent: a task already gone is fine; other kernel errors are raised). */
	async detachTask(n: Pick<NetworkAlloc, "vni">, taskNetns: string): Promise<void> {
		try {
			await ipBatch(this.sandbox(n), [`link delete ${this.vethName(n, taskNetns)}`]);
		} catch (err) {
			if (!isGone(err)) throw err;
		}
		const nets = this.endpoints.get(taskNetns);
		nets?.delete(n.vni);
		if (nets?.size === 0) this.endpoints.delete(taskNetns);
		try {
			await this.applyVips(taskNetns);
		} catch (err) {
			if (!isGone(err)) throw err;
		}
	}

	/**
	 * The service VIPs of a network and their healthy tasks; every task of the network on this node
	 * gets the new rules at once (one nft transaction per task namespace). Connections a removed
	 * backend had are flushed from conntrack where the `conntrack` tool exists.
	 */
	async setVips(n: Pick<NetworkAlloc, "vni">, rules: VipRule[]): Promise<void> {
		vipRuleset(rules); // validate before storing anything
		const before = this.vips.get(n.vni) ?? [];
		this.vips.set(n.vni, rules);
		const affected = [...this.endpoints].filter(([, nets]) => nets.has(n.vni)).map(([ns]) => ns);
		await Promise.all(affected.map((ns) => this.applyVips(ns)));
		const gone = before.flatMap((r) => {
			const now = new Set(rules.find((x) => x.vip === r.vip)?.backends ?? []);
			return r.backends.filter((b) => !now.has(b)).map((b) => [r.vip, b] as const);
		});
		if (gone.length > 0 && (await hasConntrack()))
			for (const ns of affected)
				for (const [vip, b] of gone)
					await exec(inNetns(ns, ["conntrack", "-D", "--orig-dst", vip, "--reply-src", b])).catch(() => {});
	}

	/** @internal */
	async applyVips(taskNetns: string): Promise<void> {
		const rules = [...(this.endpoints.get(taskNetns) ?? [])].flatMap((vni) => this.vips.get(vni) ?? []);
		if (rules.length === 0) await nftDeleteTable(taskNetns, LB_TABLE);
		else await nftApply(taskNetns, vipRuleset(rules));
	}

	/** The node's own endpoint on a network (the ingress network, for the routing mesh). */
	async attachNode(n: NetworkAlloc, address: string): Promise<void> {
		await this.plug(n, this.o.nodeNetns, address, this.nodeIf(n), false);
	}

	/** @internal */
	nodeIf(n: Pick<NetworkAlloc, "vni">): string {
		return `ovi${n.vni}`;
	}

	/**
	 * The routing mesh: each published port answers on every local address of this node and goes to
	 * one of the backends on `via` (the ingress network), reached through the node's endpoint there.
	 */
	async publish(ports: PublishedPort[], via: Pick<NetworkAlloc, "vni">): Promise<void> {
		const rules = meshRuleset(ports, this.nodeIf(via));
		for (const p of ports) {
			const h = this.hostPorts.find((x) => x.protocol === p.protocol && x.publishedPort === p.publishedPort);
			if (h) throw new PortConflictError(p.publishedPort, `a mode=host task (${h.backend}) on this node`, p.protocol);
		}
		await this.forwarding();
		await nftApply(this.o.nodeNetns, rules);
		this.meshPorts = ports;
	}

	async unpublishAll(): Promise<void> {
		await nftDeleteTable(this.o.nodeNetns, MESH_TABLE);
		this.meshPorts = [];
	}

	/**
	 * mode=host publishing: the whole set of this node's host-mode ports (replaces the previous
	 * set; [] removes them). Each answers only on this node and goes straight to its local task.
	 * A port the routing mesh already publishes here is refused (PortConflictError).
	 */
	async publishHost(ports: HostPublishedPort[]): Promise<void> {
		const rules = hostRuleset(ports);
		for (const p of ports) {
			if (this.meshPorts.some((m) => m.protocol === p.protocol && m.publishedPort === p.publishedPort))
				throw new PortConflictError(p.publishedPort, "the routing mesh", p.protocol);
		}
		if (ports.length === 0) await nftDeleteTable(this.o.nodeNetns, HOST_TABLE);
		else {
			await this.forwarding();
			await nftApply(this.o.nodeNetns, rules);
		}
		this.hostPorts = ports;
	}

	/**
	 * Serve DNS to the network's tasks on its gateway address (port 53, UDP and TCP, inside the
	 * sandbox); give tasks `resolvConf(n.gateway)`. Names are looked up per network, so a task only
	 * finds the services of networks it is on.
	 */
	async serveDns(
		n: NetworkAlloc,
		lookup: (service: string) => ServiceRecord | undefined,
		upstreams: string[],
	): Promise<DnsServer> {
		await this.resolvers.get(n.vni)?.stop();
		const { udp, tcp } = await bindInNetns(this.sandbox(n), n.gateway, 53, { tcp: true });
		const dns = new DnsServer({ lookup, upstreams });
		dns.serve(udp);
		if (tcp) dns.serveTcp(tcp);
		this.resolvers.set(n.vni, dns);
		return dns;
	}

	/** Stops this driver's DNS servers; kernel state stays (reconcile() takes it over after a restart). */
	async close(): Promise<void> {
		await Promise.all([...this.resolvers.values()].map((d) => d.stop()));
		this.resolvers.clear();
	}

	/**
	 * Removes the network from this node: its DNS server, sandbox (with every task veth, whose
	 * peers go with it), egress link and route, the VIP rules its tasks had from it, and the
	 * node's egress rules once no network with a way out is left.
	 */
	async deleteNetwork(n: Pick<NetworkAlloc, "vni">): Promise<void> {
		await this.resolvers.get(n.vni)?.stop();
		this.resolvers.delete(n.vni);
		this.vips.delete(n.vni);
		this.networks.delete(n.vni);
		await this.dropSandbox(this.sandbox(n));
		for (const [ns, nets] of this.endpoints) {
			if (!nets.delete(n.vni)) continue;
			if (nets.size === 0) this.endpoints.delete(ns);
			await this.applyVips(ns).catch((err) => {
				if (!isGone(err)) throw err;
			});
		}
		if ((await egressSlots(this.o.nodeNetns)).length === 0) await nftDeleteTable(this.o.nodeNetns, EGRESS_TABLE);
		if (!(await netnsList()).some((ns) => ns.startsWith(`${this.o.prefix}-ov`)))
			await nftDeleteTable(this.o.nodeNetns, TUNNEL_TABLE);
	}

	/**
	 * Deleting a namespace frees its devices later, in a kernel work queue; its links (the VXLAN
	 * device, the veths whose peers sit in tasks or in the node) are deleted first, synchronously,
	 * so the VNI can be reused at once and no peer outlives the network.
	 * @internal
	 */
	async dropSandbox(sb: string): Promise<string[]> {
		const all = await linksIn(sb);
		const links = all.map((l) => l.name).filter((x) => x !== "lo");
		if (links.length)
			await ipBatch(
				sb,
				links.map((v) => `link delete ${v}`),
			).catch(() => {});
		await exec(["ip", "netns", "delete", sb]).catch(() => {});
		// The namespaces the veths led to (tasks; the node too): reconcile cleans up their rules.
		return [...new Set(all.map((l) => /link-netns (\S+)/.exec(l.line)?.[1]).filter((x): x is string => !!x))];
	}

	/**
	 * After a restart: make the kernel match the desired state given from outside (the store).
	 * Sandboxes no network wants are removed, missing or half-built ones (re)built, stray node-side
	 * devices removed; with `o.tasks` task endpoints are swept and re-attached, with `o.vips` VIP
	 * rules rewritten, with `o.nodeEndpoints` the node's ingress endpoints; the mesh and host-mode
	 * tables are rewritten whole (or dropped when nothing is published).
	 */
	reconcile(
		desired: NetworkAlloc[],
		peers: (n: NetworkAlloc) => string[] = () => [],
		mesh?: { ports: PublishedPort[]; via: NetworkAlloc },
		o: ReconcileOptions = {},
	): Promise<ReconcileResult> {
		return reconcileDriver(this, desired, peers, mesh, o);
	}
}

let conntrack: Promise<boolean> | undefined;
const hasConntrack = () => {
	conntrack ??= exec(["sh", "-c", "command -v conntrack"]).then(
		() => true,
		() => false,
	);
	return conntrack;
};
