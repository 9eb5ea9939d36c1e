// Reconcile after a restart: overlay-net keeps no state of its own on disk; the desired state
// comes from outside (the store), and the kernel is made to match it. A crash can leave anything
// half done, so nothing is trusted by its name alone: a sandbox is checked for its bridge, VXLAN
// device, gateway address and egress link, and rebuilt if anything is missing.
import type { OverlayDriver } from "./dataplane.ts";
import { exec, ipBatch, ipNs, isGone, linksIn, netnsList, nftApply, nftDeleteTable } from "./exec.ts";
import type { RemoteEndpoint } from "./fdb.ts";
import type { NetworkAlloc } from "./ipam.ts";
import {
	EGRESS_TABLE,
	egressRuleset,
	type HostPublishedPort,
	LB_TABLE,
	type PublishedPort,
	TUNNEL_TABLE,
	type VipRule,
} from "./lb.ts";

export interface TaskEndpoint {
	network: NetworkAlloc;
	/** The task's network namespace (a name under /run/netns). */
	netns: string;
	address: string;
	ifname?: string;
	defaultRoute?: boolean;
}

export interface ReconcileOptions {
	/** Remote endpoints per network (see setEndpoints). */
	endpoints?: (n: NetworkAlloc) => RemoteEndpoint[];
	/** Every task endpoint this node should have; others in the sandboxes are removed. */
	tasks?: TaskEndpoint[];
	/** The VIPs of each network. */
	vips?: (n: NetworkAlloc) => VipRule[];
	/** This node's own endpoints (the ingress network's); others are removed. */
	nodeEndpoints?: { network: NetworkAlloc; address: string }[];
	/** This node's mode=host ports (default: none). */
	hostPorts?: HostPublishedPort[];
}

export interface ReconcileResult {
	/** Sandboxes removed (no network wants them). */
	removed: string[];
	/** Sandboxes created (missing). */
	created: string[];
	/** Sandboxes found incomplete and rebuilt. */
	rebuilt: string[];
	/** Stray devices removed from the node's namespace. */
	strays: string[];
	/** Task veths removed from sandboxes (no such task desired). */
	detached: string[];
	/** Task endpoints (re)attached: "netns/VNI". */
	attached: string[];
	/** Desired task endpoints whose namespace does not exist (the task is gone): "netns/VNI". */
	missing: string[];
}

/** Is everything createNetwork builds there? */
async function complete(d: OverlayDriver, n: NetworkAlloc): Promise<boolean> {
	const sb = d.sandbox(n);
	const ls = await linksIn(sb);
	const br = ls.find((l) => l.name === "br0");
	const vx = ls.find((l) => l.name === `vx${n.vni}`);
	if (!br || !/[<,]UP[,>]/.test(br.line)) return false;
	if (!vx || !/master br0/.test(vx.line) || !new RegExp(`vxlan id ${n.vni} `).test(vx.line)) return false;
	// A node back on another underlay address (DHCP): its tunnel still leaves from the old one.
	if (!vx.line.includes(` local ${d.o.underlayIp} `)) return false;
	const addrs = await exec(["ip", "-n", sb, "-o", "-4", "addr", "show"]).catch(() => "");
	if (!new RegExp(`br0\\s+inet ${n.gateway.replaceAll(".", "\\.")}/`).test(addrs)) return false;
	if (n.internal || n.ingress) return true;
	if (!new RegExp(`ovg${n.vni}\\s+inet 169\\.254\\.`).test(addrs)) return false;
	if (!(await exec(["ip", "-n", sb, "route", "show", "default"]).catch(() => "")).includes(`ovg${n.vni}`)) return false;
	const route = await exec(["ip", ...ipNs(d.o.nodeNetns), "route", "show", n.subnet]).catch(() => "");
	return route.includes(`dev ovh${n.vni}`);
}

export async function reconcileDriver(
	d: OverlayDriver,
	desired: NetworkAlloc[],
	peers: (n: NetworkAlloc) => string[],
	mesh: { ports: PublishedPort[]; via: NetworkAlloc } | undefined,
	o: ReconcileOptions,
): Promise<ReconcileResult> {
	const r: ReconcileResult = {
		removed: [],
		created: [],
		rebuilt: [],
		strays: [],
		detached: [],
		attached: [],
		missing: [],
	};
	const want = new Map(desired.map((n) => [d.sandbox(n), n]));
	const existing = (await netnsList()).filter((ns) => ns.startsWith(`${d.o.prefix}-ov`));
	const peers0 = new Set<string>(); // task namespaces that lost an endpoint here
	for (const ns of existing) {
		if (!want.has(ns)) {
			for (const p of await d.dropSandbox(ns)) peers0.add(p);
			r.removed.push(ns);
			const vni = Number(ns.slice(`${d.o.prefix}-ov`.length));
			d.networks.delete(vni);
			d.vips.delete(vni);
			for (const [task, nets] of d.endpoints) if (nets.delete(vni) && nets.size === 0) d.endpoints.delete(task);
		}
	}
	// Node-side strays: VXLAN devices never moved into a sandbox, egress and ingress veths whose
	// network is not (or no longer) built here. Sandboxes about to be rebuilt lose theirs too.
	const broken = new Set<number>();
	for (const [ns, n] of want) if (existing.includes(ns) && !(await complete(d, n))) broken.add(n.vni);
	const vnis = new Set(desired.filter((n) => !broken.has(n.vni)).map((n) => n.vni));
	const nodeEps = o.nodeEndpoints && new Set(o.nodeEndpoints.map((e) => e.network.vni));
	const stray = (await linksIn(d.o.nodeNetns)).filter(({ name, line }) => {
		const vni = Number(/^(?:vx|ovh|ovi)(\d+)$/.exec(name)?.[1]);
		if (!vni) return false;
		if (name.startsWith("vx")) return /vxlan id \d+ /.test(line);
		if (!vnis.has(vni)) return true;
		return name.startsWith("ovi") && nodeEps !== undefined && !nodeEps.has(vni);
	});
	if (stray.length > 0) {
		await ipBatch(
			d.o.nodeNetns,
			stray.map((l) => `link delete ${l.name}`),
		).catch(() => {});
		r.strays.push(...stray.map((l) => l.name));
	}
	for (const [ns, n] of want) {
		if (!existing.includes(ns)) {
			await d.createNetwork(n);
			r.created.push(ns);
		} else if (broken.has(n.vni)) {
			for (const p of await d.dropSandbox(ns)) peers0.add(p);
			await d.createNetwork(n);
			r.rebuilt.push(ns);
		} else {
			await d.quietBridge(ns);
			d.networks.set(n.vni, n);
		}
		await d.setPeers(n, peers(n));
		if (o.endpoints) await d.setEndpoints(n, o.endpoints(n));
	}
	// The node's own endpoints (ingress).
	const nodeLinks = new Set((await linksIn(d.o.nodeNetns)).map((l) => l.name));
	for (const e of o.nodeEndpoints ?? []) {
		if (want.has(d.sandbox(e.network)) && !nodeLinks.has(d.nodeIf(e.network))) await d.attachNode(e.network, e.address);
	}
	// Task endpoints: sweep veths of tasks not desired, attach the desired ones that are missing.
	if (o.tasks) {
		const byNet = new Map<number, TaskEndpoint[]>();
		for (const t of o.tasks) byNet.set(t.network.vni, [...(byNet.get(t.network.vni) ?? []), t]);
		const alive = new Set(await netnsList());
		const orphans = new Set<string>();
		d.endpoints.clear();
		for (const n of desired) {
			const sb = d.sandbox(n);
			const tasks = (byNet.get(n.vni) ?? []).filter((t) => alive.has(t.netns));
			for (const t of byNet.get(n.vni) ?? []) if (!alive.has(t.netns)) r.missing.push(`${t.netns}/${n.vni}`);
			const expected = new Set([d.vethName(n, undefined), ...tasks.map((t) => d.vethName(n, t.netns))]);
			const veths = (await linksIn(sb)).filter((l) => /^ve/.test(l.name));
			const have = veths.map((l) => l.name);
			const extra = veths.filter((l) => !expected.has(l.name));
			if (extra.length > 0) {
				await ipBatch(
					sb,
					extra.map((l) => `link delete ${l.name}`),
				).catch(() => {});
				r.detached.push(...extra.map((l) => `${sb}/${l.name}`));
				// The task at the other end keeps VIP rules of ours in its namespace: remove them.
				for (const l of extra) {
					const peer = /link-netns (\S+)/.exec(l.line)?.[1];
					if (peer && !o.tasks.some((x) => x.netns === peer)) orphans.add(peer);
				}
			}
			for (const t of tasks) {
				if (!have.includes(d.vethName(n, t.netns))) {
					const route = await d.defaultRouteFor(n, t.netns, t.defaultRoute);
					await d.plug(n, t.netns, t.address, t.ifname ?? "eth0", route);
					r.attached.push(`${t.netns}/${n.vni}`);
				}
				d.endpoints.set(t.netns, (d.endpoints.get(t.netns) ?? new Set()).add(n.vni));
			}
		}
		for (const ns of orphans) await nftDeleteTable(ns, LB_TABLE);
	}
	if (o.vips) for (const n of desired) d.vips.set(n.vni, o.vips(n));
	if (o.vips || o.tasks)
		for (const ns of d.endpoints.keys())
			await d.applyVips(ns).catch((err) => {
				if (!isGone(err)) throw err;
			});
	// Tasks that lost their last endpoint here keep no VIP rules of ours.
	// Without a desired task list, only namespaces left with no interface at all are cleaned.
	for (const ns of peers0) {
		if (ns === d.o.nodeNetns || d.endpoints.has(ns)) continue;
		if (o.tasks || (await linksIn(ns)).every((l) => l.name === "lo")) await nftDeleteTable(ns, LB_TABLE);
	}
	if (desired.length === 0) await nftDeleteTable(d.o.nodeNetns, TUNNEL_TABLE);
	else await d.tunnelNotrack();
	if (!desired.some((n) => !n.internal && !n.ingress)) await nftDeleteTable(d.o.nodeNetns, EGRESS_TABLE);
	else await nftApply(d.o.nodeNetns, egressRuleset());
	// The mesh and host-mode tables are rewritten whole, or dropped when nothing is published.
	await d.publishHost([]);
	if (mesh && mesh.ports.length > 0) await d.publish(mesh.ports, mesh.via);
	else await d.unpublishAll();
	await d.publishHost(o.hostPorts ?? []);
	return r;
}
