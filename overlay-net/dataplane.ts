// The per-node data plane of overlay networks, as Docker's overlay driver does it: for each
// network a sandbox namespace holding a bridge and a VXLAN device (VNI, UDP 4789, learning off,
// MTU = underlay - 50). The VXLAN device is created in the node's namespace, where the underlay
// address lives, and then moved into the sandbox; it keeps sending through the node's stack.
// Tasks attach through veth pairs. Peers are programmed explicitly (no multicast): one flooding
// FDB entry per remote node. Everything is named from a per-node prefix, so reconcile() can find
// and remove what a crashed agent left.
import { exec, ipBatch, netnsList } from "./exec.ts";
import type { NetworkAlloc } from "./ipam.ts";

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
		} catch (err) {
			await exec(["ip", "netns", "delete", sb]).catch(() => {});
			throw err;
		}
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
	async attachTask(n: NetworkAlloc, taskNetns: string, address: string, ifname = "eth0"): Promise<void> {
		const sb = this.sandbox(n);
		const host = this.vethName(n, taskNetns);
		const tmp = `t${host.slice(2)}`.slice(0, 15);
		await ipBatch(sb, [
			`link add ${host} mtu ${this.mtu} type veth peer name ${tmp} netns ${taskNetns}`,
			`link set ${host} master br0`,
			`link set ${host} up`,
		]);
		const prefix = n.subnet.split("/")[1];
		await ipBatch(taskNetns, [
			"link set lo up",
			`link set ${tmp} name ${ifname}`,
			`link set ${ifname} mtu ${this.mtu}`,
			`addr add ${address}/${prefix} dev ${ifname}`,
			`link set ${ifname} up`,
			...(n.internal ? [] : [`route add default via ${n.gateway} dev ${ifname}`]),
		]);
	}

	async detachTask(n: NetworkAlloc, taskNetns: string): Promise<void> {
		await ipBatch(this.sandbox(n), [`link delete ${this.vethName(n, taskNetns)}`]).catch(() => {});
	}

	async deleteNetwork(n: Pick<NetworkAlloc, "vni">): Promise<void> {
		await exec(["ip", "netns", "delete", this.sandbox(n)]).catch(() => {});
	}

	/** After a restart: remove sandboxes no network wants, create the missing ones. */
	async reconcile(
		desired: NetworkAlloc[],
		peers: (n: NetworkAlloc) => string[] = () => [],
	): Promise<{ removed: string[]; created: string[] }> {
		const want = new Map(desired.map((n) => [this.sandbox(n), n]));
		const existing = (await netnsList()).filter((ns) => ns.startsWith(`${this.o.prefix}-ov`));
		const removed: string[] = [];
		const created: string[] = [];
		for (const ns of existing) {
			if (!want.has(ns)) {
				await exec(["ip", "netns", "delete", ns]);
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
