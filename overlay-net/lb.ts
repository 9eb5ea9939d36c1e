// Load balancing as nftables rule sets, built here as text and applied in one atomic `nft -f`
// transaction per namespace (declare, delete, redefine: the table is replaced whole, so a reader
// never sees half an update).
//
// - VIPs: like Docker's in-container IPVS, every task namespace gets a NAT output chain that
//   rewrites a new connection to a service VIP to one of the service's healthy tasks (numgen
//   round robin). The task answers the client directly on the overlay; conntrack undoes the
//   rewrite, so no masquerade is needed and the client sees the VIP.
// - Routing mesh: in the node's namespace a published port on any local address is rewritten to a
//   task's address on the ingress network, which the node reaches through its own endpoint on
//   that network; masquerading on that endpoint brings the answer back through this node.
import { InvalidPublishError } from "./errors.ts";

export const LB_TABLE = "tsswarm_lb";
export const MESH_TABLE = "tsswarm_mesh";
export const EGRESS_TABLE = "tsswarm_egress";
export const HOST_TABLE = "tsswarm_host";
export const TUNNEL_TABLE = "tsswarm_tunnel";

/**
 * The node's own VXLAN packets (to and from its underlay address, UDP `port`) skip conntrack.
 * The egress table's ct and NAT rules turn tracking on in the node's namespace, and every
 * encapsulated packet would pay a lookup and a NAT pass on both nodes, and leave an UNREPLIED
 * entry per inner flow (each node sends from a source port hashed from the inner flow), which
 * fills the node's conntrack table on busy hosts. No tsswarm rule needs them (egress filters
 * forwarded traffic only); a host firewall must accept 4789/udp by port (state "untracked", not
 * "new"). Inner flows are still tracked in the task namespaces.
 */
export function tunnelRuleset(underlayIp: string, port: number): string {
	const ip = checkAddress(underlayIp, "underlay address");
	const p = checkPort(port, "VXLAN port");
	return replaceTable(TUNNEL_TABLE, [
		"\tchain pre {",
		"\t\ttype filter hook prerouting priority raw; policy accept;",
		`\t\tip daddr ${ip} udp dport ${p} notrack`,
		"\t}",
		"\tchain out {",
		"\t\ttype filter hook output priority raw; policy accept;",
		`\t\tip saddr ${ip} udp dport ${p} notrack`,
		"\t}",
	]);
}

/**
 * The node's rules for networks with a way out (not --internal): their sandboxes reach the node
 * through ovhVNI veths; what leaves the node is masqueraded, and nothing passes from one
 * network's veth to another's, nor between a network and the node's ingress endpoints (oviVNI),
 * so networks stay apart through the node too, and no one outside (another host routing a
 * network's subnet at this node) opens a connection into one. Only connections the node itself
 * rewrote to a published port (routing mesh, mode=host) may cross: that is what publishing means.
 */
export function egressRuleset(): string {
	return replaceTable(EGRESS_TABLE, [
		"\tchain isolate {",
		"\t\ttype filter hook forward priority 0; policy accept;",
		"\t\tct status dnat accept",
		'\t\tiifname "ovh*" oifname "ovh*" drop',
		'\t\tiifname "ovh*" oifname "ovi*" drop',
		'\t\tiifname "ovi*" oifname "ovh*" drop',
		// Nothing from outside opens a connection into a network: only answers go in.
		'\t\toifname "ovh*" ct state new drop',
		"\t}",
		"\tchain masq {",
		"\t\ttype nat hook postrouting priority srcnat; policy accept;",
		'\t\tiifname "ovh*" oifname != "ovh*" masquerade',
		"\t}",
	]);
}

export interface VipRule {
	vip: string;
	/** Addresses of the service's healthy tasks on this network. */
	backends: string[];
}

export interface PublishedPort {
	protocol: "tcp" | "udp";
	/** The port every node answers on. */
	publishedPort: number;
	/** The port the task listens on. */
	targetPort: number;
	/** Addresses of healthy tasks on the network the node reaches them by (ingress, or the task's own). */
	backends: string[];
}

function checkAddress(a: string, what: string): string {
	if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(a) || a.split(".").some((o) => Number(o) > 255))
		throw new InvalidPublishError(`${what} ${JSON.stringify(a)} is not an IPv4 address`);
	return a;
}

function checkPort(p: number, what: string): number {
	if (!Number.isInteger(p) || p < 1 || p > 65535) throw new InvalidPublishError(`${what} ${p} is not a port`);
	return p;
}

function replaceTable(name: string, chains: string[]): string {
	return [`table ip ${name}`, `delete table ip ${name}`, `table ip ${name} {`, ...chains, "}", ""].join("\n");
}

/**
 * A node's published-port table: the DNAT rules for packets arriving (prerouting) and for the
 * node's own connections (output), and one masquerade rule on the way out.
 */
function natTable(name: string, rules: string[], masquerade: string): string {
	return replaceTable(name, [
		"\tchain pre {",
		"\t\ttype nat hook prerouting priority dstnat; policy accept;",
		...rules.map((r) => `\t\t${r}`),
		"\t}",
		"\tchain out {",
		"\t\ttype nat hook output priority -100; policy accept;",
		...rules.map((r) => `\t\t${r}`),
		"\t}",
		"\tchain post {",
		"\t\ttype nat hook postrouting priority srcnat; policy accept;",
		`\t\t${masquerade}`,
		"\t}",
	]);
}

/** A `numgen` round-robin over the targets; single targets need no map. */
function spread(targets: string[]): string {
	if (targets.length === 1) return targets[0]!;
	return `numgen inc mod ${targets.length} map { ${targets.map((b, i) => `${i} : ${b}`).join(", ")} }`;
}

/** The rule set for a task namespace: VIP -> tasks; a VIP with no healthy task refuses at once. */
export function vipRuleset(rules: VipRule[]): string {
	const lines = rules.map((r) => {
		const vip = checkAddress(r.vip, "VIP");
		const backends = r.backends.map((b) => checkAddress(b, "backend"));
		return backends.length === 0 ? `\t\tip daddr ${vip} reject` : `\t\tip daddr ${vip} dnat to ${spread(backends)}`;
	});
	return replaceTable(LB_TABLE, [
		"\tchain out {",
		"\t\ttype nat hook output priority -100; policy accept;",
		...lines,
		"\t}",
	]);
}

export interface HostPublishedPort {
	protocol: "tcp" | "udp";
	/** The port this node answers on. */
	publishedPort: number;
	targetPort: number;
	/** The local task's address on `network`. */
	backend: string;
	/** The task's network; it must have a way out (not internal, not ingress): the node reaches it there. */
	network: { vni: number; internal: boolean; ingress?: boolean };
}

/**
 * mode=host publishing: the port answers only on this node and goes straight to the local task,
 * through the node's egress veth of the task's network (no mesh); masqueraded so that the answer
 * comes back that way whatever the task's default route is.
 */
export function hostRuleset(ports: HostPublishedPort[]): string {
	const seen = new Set<string>();
	const rules = ports.map((p) => {
		if (p.protocol !== "tcp" && p.protocol !== "udp")
			throw new InvalidPublishError(`protocol ${String(p.protocol)} is not tcp or udp`);
		const key = `${p.protocol}/${checkPort(p.publishedPort, "published port")}`;
		if (seen.has(key)) throw new InvalidPublishError(`${key} is published twice`);
		seen.add(key);
		if (p.network.internal || p.network.ingress)
			throw new InvalidPublishError(`${key}: mode=host needs a network with a way out (not internal, not ingress)`);
		const to = `${checkAddress(p.backend, "backend")}:${checkPort(p.targetPort, "target port")}`;
		return `fib daddr type local ${p.protocol} dport ${p.publishedPort} dnat ip to ${to}`;
	});
	return natTable(HOST_TABLE, rules, 'oifname "ovh*" ct status dnat masquerade');
}

/** The rule set for a node namespace: published ports -> tasks through the ingress endpoint. */
export function meshRuleset(ports: PublishedPort[], ingressIf: string): string {
	const seen = new Set<string>();
	const rules = ports.map((p) => {
		const key = `${p.protocol}/${checkPort(p.publishedPort, "published port")}`;
		if (seen.has(key)) throw new InvalidPublishError(`${key} is published twice`);
		seen.add(key);
		if (p.protocol !== "tcp" && p.protocol !== "udp")
			throw new InvalidPublishError(`protocol ${String(p.protocol)} is not tcp or udp`);
		const target = checkPort(p.targetPort, "target port");
		const match = `fib daddr type local ${p.protocol} dport ${p.publishedPort}`;
		const backends = p.backends.map((b) => checkAddress(b, "backend"));
		if (backends.length === 0) return `${match} reject`;
		if (backends.length === 1) return `${match} dnat ip to ${backends[0]}:${target}`;
		return `${match} dnat ip to ${spread(backends.map((b) => `${b} . ${target}`))}`;
	});
	if (!/^[\w.-]{1,15}$/.test(ingressIf)) throw new InvalidPublishError(`bad interface name ${ingressIf}`);
	return natTable(MESH_TABLE, rules, `oifname "${ingressIf}" masquerade`);
}
