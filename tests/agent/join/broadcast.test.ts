// Cluster-wide broadcast over @libp2p/gossipsub: members' messages reach every member (also
// relayed), a connected non-member neither gets them nor gets its own delivered, oversized and
// undecodable ones are refused.
import t from "tap";
import { Host, MemoryAllowList } from "../../../agent/index.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";

const TOPIC = "/tsswarm/test/1";

const refusals = new Map<string, Array<{ peer: string; name: string; message: string }>>();

async function host(t: { teardown(fn: () => unknown): void }, allow: MemoryAllowList, admitNewcomers = false) {
	const d = tempDir("bcast-");
	t.teardown(d.remove);
	const h = await Host.create({
		dataDir: d.path,
		listen: ["/ip4/127.0.0.1/tcp/0"],
		allowList: allow,
		maxFrameBytes: 64 * 1024,
		// b lets newcomers connect (as a join server does), so the outsider gets a connection and
		// it is gossipsub's own checks that keep it out of the broadcast.
		admitNewcomers,
		newcomerGraceMs: 60_000,
	});
	t.teardown(() => h.stop());
	const r: Array<{ peer: string; name: string; message: string }> = [];
	refusals.set(h.peerId, r);
	h.on("refused", ({ peer, error }) => r.push({ peer, name: error.name, message: error.message }));
	return h;
}

t.test("broadcast reaches members only, through a relay, and refuses bad messages", async (t) => {
	const allow = new MemoryAllowList();
	// a - b - c in a line (a and c are not connected), plus an outsider x connected to b.
	const [a, b, c] = [await host(t, allow), await host(t, allow, true), await host(t, allow)];
	const outsiders = new MemoryAllowList();
	const x = await host(t, outsiders);
	for (const h of [a, b, c]) allow.add(h.peerId);
	outsiders.add(a.peerId);
	outsiders.add(b.peerId);
	outsiders.add(c.peerId);
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

	// Receivers check too: a member that skips the sender-side checks gets refused by the others.
	const before = got.get(b.peerId)!.length;
	await a.publishRaw(TOPIC, Buffer.alloc(66 * 1024, 0x61)); // over the 64 KiB bound
	await a.publishRaw(TOPIC, Buffer.from([0xc1, 0xc1, 0xc1])); // not msgpack
	await waitFor("b refuses both", () => {
		const r = refusals.get(b.peerId)!;
		return r.some((x) => x.name === "FrameTooLargeError") && r.some((x) => /undecodable/.test(x.message));
	});
	await a.broadcast(TOPIC, { marker: "last" });
	await waitFor("the last marker at b", () =>
		got.get(b.peerId)!.some((g) => (g.msg as { marker?: string }).marker === "last"),
	);
	t.equal(got.get(b.peerId)!.length, before + 1, "neither the oversized nor the undecodable one was delivered");
	t.notOk(
		got.get(c.peerId)!.some((g) => (g.msg as { big?: string }).big !== undefined),
		"and the oversized one was not forwarded to c",
	);
});
