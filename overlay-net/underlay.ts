// What the node's kernel says about its underlay and its egress links: the device holding the
// underlay address and its MTU (so VXLAN gets MTU - 50 on jumbo or small-MTU links, not a guess),
// and the /31 link addresses already taken by egress veths (so slots are allocated explicitly and
// survive a restart, instead of being derived from the VNI, which collides once VNIs wrap).
import { UnderlayNotFoundError } from "./errors.ts";
import { exec, ipNs } from "./exec.ts";

export async function detectUnderlay(
	netns: string | undefined,
	address: string,
): Promise<{ dev: string; mtu: number }> {
	const addrs = await exec(["ip", ...ipNs(netns), "-o", "-4", "addr", "show"]);
	const dev = addrs
		.split("\n")
		.map((l) => /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//.exec(l))
		.find((m) => m?.[2] === address)?.[1];
	if (!dev) throw new UnderlayNotFoundError(address, `no interface ${netns ? `in ${netns} ` : ""}holds this address`);
	const link = await exec(["ip", ...ipNs(netns), "-o", "link", "show", "dev", dev]);
	const mtu = Number(/ mtu (\d+)/.exec(link)?.[1]);
	if (!mtu) throw new UnderlayNotFoundError(address, `cannot read the MTU of ${dev}`);
	return { dev, mtu };
}

/** 169.254.0.0/16 split into /31s; the block around 169.254.169.254 (cloud metadata) is never used. */
const SLOTS = 32_768;
const reserved = (slot: number) => slot >> 7 === 169;

export const slotAddresses = (slot: number) => {
	const a = slot * 2;
	return { sandbox: `169.254.${a >> 8}.${a & 255}`, node: `169.254.${(a + 1) >> 8}.${(a + 1) & 255}` };
};

/** Egress slots in use on the node, read from the addresses on its ovhVNI links. */
export async function egressSlots(netns: string | undefined): Promise<number[]> {
	const out = await exec(["ip", ...ipNs(netns), "-o", "-4", "addr", "show"]);
	return [...out.matchAll(/^\d+:\s+ovh\d+\s+inet\s+169\.254\.(\d+)\.(\d+)\/31/gm)].map(
		(m) => ((Number(m[1]) << 8) | Number(m[2])) >> 1,
	);
}

export function freeSlot(used: Iterable<number>): number | undefined {
	const taken = new Set(used);
	for (let s = 0; s < SLOTS; s++) if (!reserved(s) && !taken.has(s)) return s;
	return undefined;
}
