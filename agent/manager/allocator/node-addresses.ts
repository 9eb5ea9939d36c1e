// Nodes' own endpoints on the ingress network (the routing mesh's source address on each node):
// the top of the ingress subnet is kept for them (task addresses are handed out lowest first and
// never from there), and each node's address follows from the node set alone, so every leader
// gives the same answer without storing anything.
import { intToIp, ipToInt, parseCidr } from "../../../overlay-net/ipam/index.ts";

/** Host addresses at the top of an ingress subnet kept for nodes: a quarter, at most 1024. */
export function nodeReserve(prefix: number): number {
	const hosts = prefix >= 31 ? 0 : 2 ** (32 - prefix) - 2;
	return Math.min(1024, Math.floor(hosts / 4));
}

const fnv = (s: string): number => {
	let h = 0x811c9dc5;
	for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
	return h;
};

/**
 * Each node's ingress address: a slot of the reserved range picked by a hash of its id, the next
 * free one on a clash, nodes taken in join order (createdAt, then id) — so a node's address changes
 * only when a node that joined before it and took its slot leaves. Nodes past the range get none.
 */
export function nodeIngressAddresses(
	network: { subnet: string; gateway: string },
	nodes: ReadonlyArray<{ id: string; createdAt: string }>,
): Map<string, string> {
	const out = new Map<string, string>();
	let c: ReturnType<typeof parseCidr>;
	try {
		c = parseCidr(network.subnet);
	} catch {
		return out;
	}
	const size = nodeReserve(c.prefix);
	const top = c.base + 2 ** (32 - c.prefix) - 2;
	let gw = -1;
	try {
		gw = ipToInt(network.gateway);
	} catch {}
	const taken = new Set<number>();
	if (gw > top - size && gw <= top) taken.add(top - gw);
	const order = [...nodes].sort((a, b) =>
		a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
	);
	for (const n of order) {
		if (taken.size >= size) break;
		let slot = fnv(n.id) % size;
		while (taken.has(slot)) slot = (slot + 1) % size;
		taken.add(slot);
		out.set(n.id, intToIp(top - slot));
	}
	return out;
}
