// The per-node data plane of overlay networks, as Docker's overlay driver does it: for each
// network a sandbox namespace holding a bridge and a VXLAN device (VNI, UDP 4789, learning off,
// MTU = underlay - 50). The VXLAN device is created in the node's namespace, where the underlay
// address lives, and then moved into the sandbox; it keeps sending through the node's stack.
// Tasks attach through veth pairs. Peers are programmed explicitly (no multicast): one flooding
// FDB entry per remote node. Everything is named from a per-node prefix, so reconcile() can find
// and remove what a crashed agent left.
import { DnsServer, type ServiceRecord } from "./dns.ts";
import { bindUdpInNetns, exec, ipBatch, netnsList, nftApply } from "./exec.ts";
import type { NetworkAlloc } from "./ipam.ts";
import {
	EGRESS_TABLE,
	egressRuleset,
	MESH_TABLE,
	meshRuleset,
	type PublishedPort,
	type VipRule,
	vipRuleset,
} from "./lb.ts";

export interface DriverOptions {
	/** Namespace holding the node's underlay interface (undefined: the current one). */
	nodeNetns?: string;
	underlayIp: string;
	underlayDev?: string;
	underlayMtu?: number;
	/** Unique per node; sandbox namespaces are PREFIX-ovVNI. */
	prefix: string;
}

const VXLAN_PORT = 4789;
const VXLAN_OVERHEAD = 50;

export class OverlayDriver {
	private readonly o: Required<Omit<DriverOptions, "nodeNetns">> & { nodeNetns?: string };
	/** Task namespace -> the VNIs it is attached to on this node. */
	private readonly endpoints = new Map<string, Set<number>>();
	/** VNI -> the service VIPs of that network. */
	private readonly vips = new Map<number, VipRule[]>();
	private readonly resolvers = new Map<number, DnsServer>();

	constructor(o: DriverOptions) {
		this.o = { underlayDev: "eth0", underlayMtu: 1500, ...o };
	}

	sandbox(n: Pick<NetworkAlloc, "vni">): string {
		return `${this.o.prefix}-ov${n.vni}`;
	}

	get mtu(): number {
		return this.o.underlayMtu - VXLAN_OVERHEAD;
	}

	async createNetwork(n: NetworkAlloc): Promise<void> {
		const sb = this.sandbox(n);
		const vx = `vx${n.vni}`;
		const prefix = n.subnet.split("/")[1];
		await exec(["ip", "netns", "add", sb]);
		try {
			await ipBatch(this.o.nodeNetns, [
				`link add ${vx} type vxlan id ${n.vni} dstport ${VXLAN_PORT} local ${this.o.underlayIp} dev ${this.o.underlayDev} nolearning`,
				`link set ${vx} mtu ${this.mtu} netns ${sb}`,
			]);
			await ipBatch(sb, [
				"link set lo up",
				"link add br0 type bridge",
				`link set br0 mtu ${this.mtu}`,
				`link set ${vx} master br0`,
				`addr add ${n.gateway}/${prefix} dev br0`,
				`link set ${vx} up`,
				"link set br0 up",
			]);
			if (!n.internal && !n.ingress) await this.plugEgress(n);
		} catch (err) {
			await this.dropSandbox(sb);
			throw err;
		}
	}

	/**
	 * A way out for a network that is not --internal (Docker's docker_gwbridge, done with one veth
	 * per network): the sandbox routes through the node, which masquerades. The link gets a /31
	 * from 169.254.0.0/16 derived from the VNI, unique on the node.
	 */
	private async plugEgress(n: NetworkAlloc): Promise<void> {
		const sb = this.sandbox(n);
		const slot = (n.vni % 32_768) * 2;
		const inSb = `169.254.${slot >> 8}.${slot & 255}`;
		const inNode = `169.254.${(slot + 1) >> 8}.${(slot + 1) & 255}`;
		const node = this.o.nodeNetns ?? String(process.pid);
		await ipBatch(sb, [
			`link add ovg${n.vni} type veth peer name ovh${n.vni} netns ${node}`,
			`addr add ${inSb}/31 dev ovg${n.vni}`,
			`link set ovg${n.vni} up`,
			`route add default via ${inNode} dev ovg${n.vni}`,
		]);
		await ipBatch(this.o.nodeNetns, [
			`addr add ${inNode}/31 dev ovh${n.vni}`,
			`link set ovh${n.vni} up`,
			`route add ${n.subnet} via ${inSb} dev ovh${n.vni}`,
		]);
		await exec(["nsenter", `--net=/run/netns/${sb}`, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
		await exec([...this.inNode(), "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
		await nftApply(this.o.nodeNetns, egressRuleset());
	}

	/** Make the network's VXLAN reach exactly these other nodes (underlay addresses). */
	async setPeers(n: NetworkAlloc, peers: string[]): Promise<void> {
		const sb = this.sandbox(n);
		const vx = `vx${n.vni}`;
		const fdb = await exec(["bridge", "-n", sb, "fdb", "show", "dev", vx]);
		const have = new Set([...fdb.matchAll(/^00:00:00:00:00:00 dst ([\d.]+)/gm)].map((m) => m[1]!));
		const want = new Set(peers.filter((p) => p !== this.o.underlayIp));
		for (const p of want)
			if (!have.has(p)) await exec(["bridge", "-n", sb, "fdb", "append", "00:00:00:00:00:00", "dev", vx, "dst", p]);
		for (const p of have)
			if (!want.has(p)) await exec(["bridge", "-n", sb, "fdb", "del", "00:00:00:00:00:00", "dev", vx, "dst", p]);
	}

	private vethName(n: NetworkAlloc, taskNetns: string): string {
		// ifnames are at most 15 characters: a short hash of the task namespace and the VNI.
		let h = 0;
		for (const c of `${taskNetns}/${n.vni}`) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
		return `ve${h.toString(36)}`.slice(0, 15);
	}

	/** Plug a task's network namespace into the network with its allocated address. */
	async attachTask(
		n: NetworkAlloc,
		taskNetns: string,
		address: string,
		ifname = "eth0",
		o: { defaultRoute?: boolean } = {},
	): Promise<void> {
		await this.plug(n, taskNetns, address, ifname, o.defaultRoute ?? !n.internal);
		const nets = this.endpoints.get(taskNetns) ?? new Set();
		nets.add(n.vni);
		this.endpoints.set(taskNetns, nets);
		await this.applyVips(taskNetns);
	}

	private async plug(n: NetworkAlloc, netns: string, address: string, ifname: string, route: boolean): Promise<void> {
		const sb = this.sandbox(n);
		const host = this.vethName(n, netns);
		const tmp = `t${host.slice(2)}`.slice(0, 15);
		await ipBatch(sb, [
			`link add ${host} mtu ${this.mtu} type veth peer name ${tmp} netns ${netns}`,
			`link set ${host} master br0`,
			`link set ${host} up`,
		]);
		const prefix = n.subnet.split("/")[1];
		await ipBatch(netns, [
			"link set lo up",
			`link set ${tmp} name ${ifname}`,
			`link set ${ifname} mtu ${this.mtu}`,
			`addr add ${address}/${prefix} dev ${ifname}`,
			`link set ${ifname} up`,
			...(route ? [`route add default via ${n.gateway} dev ${ifname}`] : []),
		]);
	}

	async detachTask(n: NetworkAlloc, taskNetns: string): Promise<void> {
		await ipBatch(this.sandbox(n), [`link delete ${this.vethName(n, taskNetns)}`]).catch(() => {});
		const nets = this.endpoints.get(taskNetns);
		nets?.delete(n.vni);
		if (nets?.size === 0) this.endpoints.delete(taskNetns);
		else if (nets) await this.applyVips(taskNetns).catch(() => {});
	}

	/**
	 * The service VIPs of a network and their healthy tasks; every task of the network on this node
	 * gets the new rules at once (one nft transaction per task namespace).
	 */
	async setVips(n: Pick<NetworkAlloc, "vni">, rules: VipRule[]): Promise<void> {
		vipRuleset(rules); // validate before storing anything
		this.vips.set(n.vni, rules);
		const affected = [...this.endpoints].filter(([, nets]) => nets.has(n.vni)).map(([ns]) => ns);
		await Promise.all(affected.map((ns) => this.applyVips(ns)));
	}

	private async applyVips(taskNetns: string): Promise<void> {
		const rules = [...(this.endpoints.get(taskNetns) ?? [])].flatMap((vni) => this.vips.get(vni) ?? []);
		await nftApply(taskNetns, vipRuleset(rules));
	}

	/** The node's own endpoint on a network (the ingress network, for the routing mesh). */
	async attachNode(n: NetworkAlloc, address: string): Promise<void> {
		await this.plug(n, this.o.nodeNetns ?? String(process.pid), address, this.nodeIf(n), false);
	}

	private nodeIf(n: Pick<NetworkAlloc, "vni">): string {
		return `ovi${n.vni}`;
	}

	/**
	 * The routing mesh: each published port answers on every local address of this node and goes to
	 * one of the backends on `via` (the ingress network), reached through the node's endpoint there.
	 */
	async publish(ports: PublishedPort[], via: Pick<NetworkAlloc, "vni">): Promise<void> {
		const rules = meshRuleset(ports, this.nodeIf(via));
		await exec([...this.inNode(), "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
		await nftApply(this.o.nodeNetns, rules);
	}

	async unpublishAll(): Promise<void> {
		await exec([...this.inNode(), "nft", "delete", "table", "ip", MESH_TABLE]).catch(() => {});
	}

	private inNode(): string[] {
		return this.o.nodeNetns ? ["nsenter", `--net=/run/netns/${this.o.nodeNetns}`] : [];
	}

	/**
	 * Serve DNS to the network's tasks on its gateway address (port 53 inside the sandbox); give
	 * tasks `resolvConf(n.gateway)`. Names are looked up per network, so a task only finds the
	 * services of networks it is on.
	 */
	async serveDns(
		n: NetworkAlloc,
		lookup: (service: string) => ServiceRecord | undefined,
		upstreams: string[],
	): Promise<DnsServer> {
		await this.resolvers.get(n.vni)?.stop();
		const sock = await bindUdpInNetns(this.sandbox(n), n.gateway, 53);
		const dns = new DnsServer({ lookup, upstreams });
		dns.serve(sock);
		this.resolvers.set(n.vni, dns);
		return dns;
	}

	/** Stops this driver's DNS servers; kernel state stays (reconcile() takes it over after a restart). */
	async close(): Promise<void> {
		await Promise.all([...this.resolvers.values()].map((d) => d.stop()));
		this.resolvers.clear();
	}

	async deleteNetwork(n: Pick<NetworkAlloc, "vni">): Promise<void> {
		await this.resolvers.get(n.vni)?.stop();
		this.resolvers.delete(n.vni);
		this.vips.delete(n.vni);
		for (const [ns, nets] of this.endpoints) if (nets.delete(n.vni) && nets.size === 0) this.endpoints.delete(ns);
		await this.dropSandbox(this.sandbox(n));
	}

	/**
	 * Deleting a namespace frees its devices later, in a kernel work queue; its links (the VXLAN
	 * device, the veths whose peers sit in tasks or in the node) are deleted first, synchronously,
	 * so the VNI can be reused at once and no peer outlives the network.
	 */
	private async dropSandbox(sb: string): Promise<void> {
		const links = (await exec(["ip", "-n", sb, "-o", "link", "show"]).catch(() => ""))
			.split("\n")
			.map((l) => /^\d+: ([^@:]+)/.exec(l)?.[1])
			.filter((x): x is string => !!x && x !== "lo");
		if (links.length)
			await ipBatch(
				sb,
				links.map((v) => `link delete ${v}`),
			).catch(() => {});
		await exec(["ip", "netns", "delete", sb]).catch(() => {});
	}

	/** After a restart: remove sandboxes no network wants, create the missing ones. */
	async reconcile(
		desired: NetworkAlloc[],
		peers: (n: NetworkAlloc) => string[] = () => [],
		mesh?: { ports: PublishedPort[]; via: NetworkAlloc },
	): Promise<{ removed: string[]; created: string[] }> {
		const want = new Map(desired.map((n) => [this.sandbox(n), n]));
		const existing = (await netnsList()).filter((ns) => ns.startsWith(`${this.o.prefix}-ov`));
		const removed: string[] = [];
		const created: string[] = [];
		for (const ns of existing) {
			if (!want.has(ns)) {
				await this.dropSandbox(ns);
				removed.push(ns);
			}
		}
		for (const [ns, n] of want) {
			if (!existing.includes(ns)) {
				await this.createNetwork(n);
				created.push(ns);
			}
			await this.setPeers(n, peers(n));
		}
		if (!desired.some((n) => !n.internal && !n.ingress))
			await exec([...this.inNode(), "nft", "delete", "table", "ip", EGRESS_TABLE]).catch(() => {});
		// The mesh table is rewritten whole, or dropped when nothing is published.
		if (mesh && mesh.ports.length > 0) await this.publish(mesh.ports, mesh.via);
		else await this.unpublishAll();
		return { removed, created };
	}
}

/** Encrypted overlays need IPsec ESP (AEAD) or WireGuard; say which is missing instead of pretending. */
export async function checkEncryptionSupport(): Promise<void> {
	const { EncryptionUnsupportedError } = await import("./errors.ts");
	// Probe inside a namespace of our own so nothing touches the host's links.
	const ns = `tsov-probe-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
	await exec(["ip", "netns", "add", ns]);
	try {
		await exec(["ip", "-n", ns, "link", "add", "wg0", "type", "wireguard"]);
		return;
	} catch {
		throw new EncryptionUnsupportedError(
			"the wireguard module is not available (and IPsec AEAD is not usable here); see overlay-net/ENCRYPTION.md",
		);
	} finally {
		await exec(["ip", "netns", "delete", ns]).catch(() => {});
	}
}
