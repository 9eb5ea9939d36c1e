// `lab cut`/`lab heal`: a set of hub ports whose frames the hub bridge drops in both directions
// (nftables, bridge family, in the hub namespace). The node keeps its link and addresses, so its
// TCP, UDP gossip, VXLAN and ARP vanish silently, as on a real partition, not with errors.
import { REGISTRY_NODE } from "./names.ts";
import { run } from "./shell.ts";
import type { LabNode, LabRecord } from "./state.ts";

const TABLE = "tsswarm_lab";
const SET = "cut";

/** The node's veth port on the hub bridge (named after the node; the registry's is "reg"). */
const hubPort = (node: LabNode) => (node.name === REGISTRY_NODE ? "reg" : node.name);

const nft = (rec: LabRecord, script: string) =>
	run(["ip", "netns", "exec", rec.hubNetns, "nft", "-f", "-"], { input: `${script}\n` });

async function ensureTable(rec: LabRecord): Promise<void> {
	const r = await run(["ip", "netns", "exec", rec.hubNetns, "nft", "list", "table", "bridge", TABLE], {
		allowFailure: true,
	});
	if (r.code === 0) return;
	await nft(
		rec,
		`table bridge ${TABLE} {
	set ${SET} { type ifname; }
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname @${SET} drop
		oifname @${SET} drop
	}
}`,
	);
}

export async function isCut(rec: LabRecord, node: LabNode): Promise<boolean> {
	const r = await run(["ip", "netns", "exec", rec.hubNetns, "nft", "-j", "list", "set", "bridge", TABLE, SET], {
		allowFailure: true,
	});
	if (r.code !== 0) return false;
	const doc = JSON.parse(r.stdout) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
	return doc.nftables.some((o) => o.set?.elem?.includes(hubPort(node)));
}

export async function cutUnderlay(rec: LabRecord, node: LabNode): Promise<void> {
	await ensureTable(rec);
	// `add` of an element already there is not an error: cutting twice is cutting once.
	await nft(rec, `add element bridge ${TABLE} ${SET} { "${hubPort(node)}" }`);
}

export async function healUnderlay(rec: LabRecord, node: LabNode): Promise<void> {
	await ensureTable(rec);
	// Add then delete in one transaction: healing a node that is not cut is not an error.
	const el = `{ "${hubPort(node)}" }`;
	await nft(rec, `add element bridge ${TABLE} ${SET} ${el}\ndelete element bridge ${TABLE} ${SET} ${el}`);
}
