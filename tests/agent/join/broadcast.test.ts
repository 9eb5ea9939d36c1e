// Cluster-wide broadcast over @libp2p/gossipsub: members' messages reach every member (also
// relayed), a connected non-member neither gets them nor gets its own delivered, oversized and
// undecodable ones are refused.
import t from "tap";
import { Host, MemoryAllowList } from "../../../agent/index.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";

const TOPIC = "/tsswarm/test/1";

async function host(t: { teardown(fn: () => unknown): void }, allow: MemoryAllowList) {
	const d = tempDir("bcast-");
	t.teardown(d.remove);
	const h = await Host.create({
		dataDir: d.path,
		listen: ["/ip4/127.0.0.1/tcp/0"],
		allowList: allow,
		maxFrameBytes: 64 * 1024,
	});
	t.teardown(() => h.stop());
	return h;
}

t.test("broadcast reaches members only, through a relay, and refuses bad messages", async (t) => {
	const allow = new MemoryAllowList();
	// a - b - c in a line (a and c are not connected), plus an outsider x connected to b.
	const [a, b, c] = [await host(t, allow), await host(t, allow), await host(t, allow)];
	const x = await host(t, new MemoryAllowList());
	for (const h of [a, b, c]) allow.add(h.peerId);
	x.allowList.add(a.peerId);
	x.allowList.add(b.peerId);
	x.allowList.add(c.peerId);
	const got = new Map<string, Array<{ msg: unknown; from: string }>>();
	for (const h of [a, b, c, x]) {
		got.set(h.peerId, []);
		h.subscribe(TOPIC, (msg, from) => got.get(h.peerId)!.push({ msg, from }));
	}
	await a.node.dial(b.node.getMultiaddrs()[0]!);
	await c.node.dial(b.node.getMultiaddrs()[0]!);
	await x.node.dial(b.node.getMultiaddrs()[0]!);
	await waitFor("the topic's mesh: a - b - c", () => {
		const peers = b.meshPeers(TOPIC);
		return (peers.includes(a.peerId) && peers.includes(c.peerId) && a.meshPeers(TOPIC).includes(b.peerId)) || undefined;
	});
	t.notOk(b.meshPeers(TOPIC).includes(x.peerId), "the non-member gets no mesh slot");

	await a.broadcast(TOPIC, { hello: "members", n: 1 });
	await waitFor("b and c to receive", () => (got.get(b.peerId)!.length && got.get(c.peerId)!.length) || undefined);
	t.same(got.get(c.peerId)![0], { msg: { hello: "members", n: 1 }, from: a.peerId }, "c got it through b, signed by a");

	// The outsider publishes; b refuses it (not a member), so no member delivers it.
	await x.broadcast(TOPIC, { evil: true }).catch(() => 0);
	await b.broadcast(TOPIC, { marker: "after" });
	await waitFor(
		"the marker at a and c",
		() => [a, c].every((h) => got.get(h.peerId)!.some((g) => (g.msg as { marker?: string }).marker)) || undefined,
	);
	for (const h of [a, b, c])
		t.notOk(
			got.get(h.peerId)!.some((g) => (g.msg as { evil?: boolean }).evil),
			"a non-member's broadcast is not delivered",
		);
	t.same(got.get(x.peerId), [], "the non-member received nothing, though it is connected and subscribed");

	await t.rejects(a.broadcast(TOPIC, { big: "x".repeat(70 * 1024) }), /too large|exceeds|over/i, "oversized refused");
});
