// A lab node moves to another underlay address, as a DHCP lease renewed to a new IP would: its
// eth0 drops the old address and takes the new one (same link, same hub port), and the record
// says so. Only with its agent stopped: `lab start NODE --addr IP` then starts it on the new one.
import { LabAddressError } from "./errors.ts";
import { UNDERLAY_PREFIX } from "./names.ts";
import { ipBatch } from "./shell.ts";
import type { LabNode, LabRecord } from "./state.ts";

/** Checks `addr` for `node`: an IPv4 host address of the lab's 198.18.0.0/16 no one else holds. */
export function checkNewAddress(rec: LabRecord, node: LabNode, addr: string): string {
	const bad = (why: string): never => {
		throw new LabAddressError(node.name, addr, why);
	};
	const m = /^198\.18\.(\d{1,3})\.(\d{1,3})$/.exec(addr);
	if (!m || Number(m[1]) > 255 || Number(m[2]) > 255) bad(`the lab's underlay is 198.18.0.0/${UNDERLAY_PREFIX}`);
	if ((m![1] === "0" && m![2] === "0") || (m![1] === "255" && m![2] === "255"))
		bad("that is the network's or the broadcast address");
	const holder =
		rec.nodes.find((n) => n !== node && n.address === addr)?.name ??
		(rec.registry?.address === addr ? "registry" : undefined);
	if (holder) bad(`${holder} has it`);
	return addr;
}

/** Moves the node's eth0 from its address to `addr` and records it (the caller writes the record). */
export async function moveAddress(rec: LabRecord, node: LabNode, addr: string, signal?: AbortSignal): Promise<boolean> {
	if (node.address === addr) return false;
	checkNewAddress(rec, node, addr);
	await ipBatch(
		[`addr del ${node.address}/${UNDERLAY_PREFIX} dev eth0`, `addr add ${addr}/${UNDERLAY_PREFIX} dev eth0`],
		{
			netns: node.netns,
			signal,
		},
	);
	node.address = addr;
	return true;
}
