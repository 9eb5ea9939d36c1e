// Per-endpoint forwarding state, as Docker's overlay driver programs it: every task interface gets
// a MAC derived from its IP (02:42 + the four address bytes), so a remote endpoint's MAC is known
// from the store without asking. For each remote endpoint the sandbox holds a static ARP entry on
// the bridge (the bridge answers ARP itself: neigh_suppress on the VXLAN port), a static bridge
// FDB entry pointing at the VXLAN port, and a VXLAN FDB entry "MAC dst VTEP". Unicast then goes
// to exactly one node; the all-zero flood entries (setPeers) only carry broadcasts that the bridge
// cannot answer. Learning stays off.
import { ipToInt } from "./cidr.ts";
import { InvalidPublishError } from "./errors.ts";
import { bridgeBatch, exec, ipBatch } from "./exec.ts";

export interface RemoteEndpoint {
	/** The endpoint's address on the network (a task, or a node's ingress endpoint). */
	address: string;
	/** The underlay address of the node it lives on. */
	vtep: string;
}

export function macFor(ip: string): string {
	const n = ipToInt(ip);
	return [
		"02",
		"42",
		...[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, "0")),
	].join(":");
}

/** Brings the sandbox's per-endpoint entries to exactly `endpoints`, in one ip and one bridge batch. */
export async function programEndpoints(sb: string, vx: string, endpoints: RemoteEndpoint[]): Promise<void> {
	const want = new Map<string, RemoteEndpoint>();
	for (const e of endpoints) {
		if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(e.vtep)) throw new InvalidPublishError(`VTEP ${e.vtep} is not an IPv4 address`);
		want.set(macFor(e.address), e);
	}
	const fdb = await exec(["bridge", "-n", sb, "fdb", "show", "dev", vx]);
	const haveVx = new Map<string, string>(); // mac -> vtep
	const haveBr = new Set<string>();
	for (const m of fdb.matchAll(/^(02:42:[0-9a-f:]{11}) (?:dst ([\d.]+) )?(.*)$/gm)) {
		if (m[2]) haveVx.set(m[1]!, m[2]);
		else if (/master .*\bstatic\b/.test(m[3]!)) haveBr.add(m[1]!);
	}
	const neigh = await exec(["ip", "-n", sb, "neigh", "show", "dev", "br0"]);
	const haveNeigh = new Map<string, string>(); // ip -> mac
	for (const m of neigh.matchAll(/^([\d.]+) lladdr (02:42:[0-9a-f:]{11}) PERMANENT/gm)) haveNeigh.set(m[1]!, m[2]!);

	const br: string[] = [];
	const ip: string[] = [];
	for (const [mac, e] of want) {
		if (haveVx.get(mac) !== e.vtep) br.push(`fdb replace ${mac} dev ${vx} dst ${e.vtep} self permanent`);
		if (!haveBr.has(mac)) br.push(`fdb replace ${mac} dev ${vx} master static`);
		if (haveNeigh.get(e.address) !== mac) ip.push(`neigh replace ${e.address} lladdr ${mac} dev br0 nud permanent`);
	}
	for (const mac of haveVx.keys()) if (!want.has(mac)) br.push(`fdb del ${mac} dev ${vx} self`);
	for (const mac of haveBr) if (!want.has(mac)) br.push(`fdb del ${mac} dev ${vx} master`);
	for (const [addr, mac] of haveNeigh) if (!want.has(mac)) ip.push(`neigh del ${addr} dev br0`);
	await bridgeBatch(sb, br);
	await ipBatch(sb, ip);
}

/** The flood list: one all-zero FDB entry per remote node (broadcasts the bridge cannot answer). */
export async function programFlood(sb: string, vx: string, peers: string[]): Promise<void> {
	const fdb = await exec(["bridge", "-n", sb, "fdb", "show", "dev", vx]);
	const have = new Set([...fdb.matchAll(/^00:00:00:00:00:00 dst ([\d.]+)/gm)].map((m) => m[1]!));
	const want = new Set(peers);
	await bridgeBatch(sb, [
		...[...want].filter((p) => !have.has(p)).map((p) => `fdb append 00:00:00:00:00:00 dev ${vx} dst ${p}`),
		...[...have].filter((p) => !want.has(p)).map((p) => `fdb del 00:00:00:00:00:00 dev ${vx} dst ${p}`),
	]);
}
