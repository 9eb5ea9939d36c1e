import t from "tap";
import {
	decodePacket,
	encodePacket,
	InvalidPacketError,
	lanConfig,
	Membership,
	MetadataTooLargeError,
	NotAMemberError,
	UdpTransport,
	UnknownVersionError,
	validateConfig,
} from "../../../agent/membership/index.ts";
import { waitFor } from "../../helpers/index.ts";
import { converged, KEY, simCluster } from "./sim.ts";

t.test("5 members converge, share metadata, and detect a crashed one", async (t) => {
	const c = await simCluster(5, { seed: 3 });
	const conv = c.runUntil(() => converged(c.nodes, 5), 10_000);
	t.ok(conv !== undefined, `converged in ${conv} virtual ms`);
	t.equal(c.nodes[4]!.get("m1")?.meta.platform?.architecture, "arm64", "metadata travels with membership");
	const failed: string[] = [];
	for (const m of c.nodes) m.on("fail", (x) => failed.push(`${m.id}:${x.id}`));
	await c.nodes[2]!.stop();
	const t0 = c.clock.now();
	const det = c.runUntil(
		() => c.nodes.filter((m) => m.id !== "m2").every((m) => m.get("m2")?.state === "dead"),
		30_000,
	);
	t.ok(det !== undefined, `every member marked m2 failed ${det} ms after it crashed`);
	t.ok((det ?? 1e9) < 10_000, "within 10 s on a 500 ms probe interval");
	t.equal(failed.length, 4, "one fail event per survivor");
	t.ok(c.clock.now() >= t0);
});

t.test("graceful leave is a leave, not a failure", async (t) => {
	const c = await simCluster(4, { seed: 5 });
	c.runUntil(() => converged(c.nodes, 4), 10_000);
	const events: string[] = [];
	for (const m of c.nodes) {
		m.on("leave", (x) => events.push(`leave:${x.id}`));
		m.on("fail", (x) => events.push(`fail:${x.id}`));
	}
	const leaving = c.nodes[3]!.leave(200);
	c.run(300);
	await leaving;
	c.run(5000);
	t.same([...new Set(events)], ["leave:m3"]);
	t.ok(c.nodes.slice(0, 3).every((m) => m.get("m3")?.state === "left"));
});

t.test("indirect probes keep a member whose direct link is cut; a suspected member refutes", async (t) => {
	const c = await simCluster(6, { seed: 9 });
	c.runUntil(() => converged(c.nodes, 6), 10_000);
	const fails: string[] = [];
	for (const m of c.nodes) m.on("fail", (x) => fails.push(`${m.id}:${x.id}`));
	// m0 cannot reach m1 directly, but everyone else can.
	c.net.partition(
		[c.nodes[0]!.all().find((m) => m.id === "m0")!.addr],
		[c.nodes[1]!.all().find((m) => m.id === "m1")!.addr],
	);
	c.run(20_000);
	t.same(fails, [], "no one declared m1 (or m0) failed");
	t.ok(c.nodes[0]!.stats.indirect > 0, "m0 used indirect probes");
	c.net.heal();
	// A slow member gets suspected and must refute by raising its incarnation.
	const slowAddr = c.nodes[5]!.all().find((m) => m.id === "m5")!.addr;
	c.net.slow.set(slowAddr, 400);
	c.run(8000);
	c.net.slow.delete(slowAddr);
	c.run(8000);
	t.ok(
		c.nodes.every((m) => m.get("m5")?.state === "alive"),
		"m5 is alive everywhere in the end",
	);
});

t.test("partition and heal: both sides fail the other, then merge back by push-pull", async (t) => {
	const c = await simCluster(6, { seed: 11, config: { pushPullIntervalMs: 3000 } });
	c.runUntil(() => converged(c.nodes, 6), 10_000);
	const addr = (i: number) => c.nodes[i]!.all().find((m) => m.id === `m${i}`)!.addr;
	c.net.partition([addr(0), addr(1), addr(2)], [addr(3), addr(4), addr(5)]);
	const split = c.runUntil(() => converged(c.nodes, 3), 60_000);
	t.ok(split !== undefined, `each side sees only itself after ${split} ms`);
	c.net.heal();
	// Dead members come back when they refute through a sync with a higher incarnation.
	for (const m of c.nodes) m.join([addr((Number(m.id.slice(1)) + 3) % 6)]);
	const merged = c.runUntil(() => converged(c.nodes, 6), 60_000);
	t.ok(merged !== undefined, `merged again ${merged} ms after healing`);
});

t.test("200 simulated members with 5% loss: convergence, no false failures, bytes per node", async (t) => {
	const c = await simCluster(200, { seed: 17, loss: 0.05 });
	const conv = c.runUntil(() => converged(c.nodes, 200), 60_000, 100);
	t.ok(conv !== undefined, `200 members converged in ${conv} virtual ms`);
	const fails: string[] = [];
	for (const m of c.nodes) m.on("fail", (x) => fails.push(x.id));
	const b0 = c.bytesSent();
	c.run(30_000);
	const perNode = (c.bytesSent() - b0) / 200 / 30;
	t.same(fails, [], "no member was falsely declared failed");
	t.ok(perNode < 20_000, `${Math.round(perNode)} bytes/s per node`);
});

t.test(
	"bad input: garbage, truncated, oversized, unknown version, non-member, oversized metadata, stale incarnation",
	async (t) => {
		const cfg = lanConfig();
		const good = encodePacket({ t: "ping", seq: 1, from: "x", to: "y", u: [] }, KEY);
		t.same(decodePacket(good, KEY, cfg.maxPacketBytes).t, "ping");
		t.throws(() => decodePacket(Buffer.from("garbage"), KEY, cfg.maxPacketBytes), InvalidPacketError);
		t.throws(() => decodePacket(good.subarray(0, 10), KEY, cfg.maxPacketBytes), InvalidPacketError);
		t.throws(() => decodePacket(Buffer.alloc(cfg.maxPacketBytes + 1, 1), KEY, cfg.maxPacketBytes), /exceeds/);
		const v2 = Buffer.from(good);
		v2[0] = 2;
		t.throws(() => decodePacket(v2, KEY, cfg.maxPacketBytes), UnknownVersionError);
		t.throws(
			() =>
				decodePacket(
					encodePacket({ t: "ping", seq: 1, from: "x", to: "y", u: [] }, Buffer.from("other cluster")),
					KEY,
					cfg.maxPacketBytes,
				),
			NotAMemberError,
		);
		const forged = Buffer.from(good);
		forged[forged.length - 1]! ^= 1;
		t.throws(() => decodePacket(forged, KEY, cfg.maxPacketBytes), NotAMemberError, "a tampered packet fails its MAC");
		t.throws(() => validateConfig({ ...cfg, probeTimeoutMs: cfg.probeIntervalMs }), /probeTimeoutMs/);
		t.throws(
			() =>
				new Membership({
					id: "big",
					transport: new UdpTransport("127.0.0.1"),
					clusterKey: KEY,
					config: cfg,
					meta: { labels: { x: "y".repeat(5000) } },
				}),
			MetadataTooLargeError,
		);

		// Over real UDP: a member keeps running through all of it and ignores stale news.
		const a = new Membership({ id: "a", transport: new UdpTransport("127.0.0.1"), clusterKey: KEY, config: cfg });
		const b = new Membership({ id: "b", transport: new UdpTransport("127.0.0.1"), clusterKey: KEY, config: cfg });
		await a.start();
		await b.start();
		t.teardown(async () => {
			await a.stop();
			await b.stop();
		});
		b.join([a.all()[0]!.addr]);
		await waitFor("a and b see each other", () => a.live().length === 2 && b.live().length === 2);
		const refused: string[] = [];
		a.on("refused", ({ error }) => refused.push((error as unknown as { code: string }).code));
		const mallory = new UdpTransport("127.0.0.1");
		await mallory.start(() => {});
		t.teardown(() => mallory.stop());
		const aAddr = a.all().find((m) => m.id === "a")!.addr;
		mallory.send(aAddr, Buffer.from("garbage bytes"));
		mallory.send(aAddr, encodePacket({ t: "ping", seq: 1, from: "m", to: "a", u: [] }, Buffer.from("wrong key")));
		mallory.send(aAddr, v2);
		const bigMeta = { labels: { x: "y".repeat(5000) } };
		mallory.send(
			aAddr,
			encodePacket(
				{
					t: "sync",
					from: "m",
					reply: true,
					u: [{ id: "z", addr: "127.0.0.1:1", inc: 1, state: "alive", meta: bigMeta, by: "m" }],
				},
				KEY,
			),
		);
		const bInc = a.get("b")!.incarnation;
		mallory.send(
			aAddr,
			encodePacket(
				{
					t: "sync",
					from: "m",
					reply: true,
					u: [{ id: "b", addr: "127.0.0.1:1", inc: bInc - 1, state: "dead", by: "m" }],
				},
				KEY,
			),
		);
		await waitFor("four refusals", () => refused.length >= 4);
		t.same(refused.sort(), ["ERR_INVALID_PACKET", "ERR_META_TOO_LARGE", "ERR_NOT_A_MEMBER", "ERR_UNKNOWN_VERSION"]);
		await new Promise((r) => setTimeout(r, 100));
		t.equal(a.get("b")?.state, "alive", "a dead claim with a lower incarnation is ignored");
		t.notOk(a.get("z"), "the member with oversized metadata was not added");
		// And the detector still works after all that: stop b, a marks it failed.
		await b.stop();
		await waitFor("a marks b failed", () => a.get("b")?.state === "dead", { timeoutMs: 15_000 });
	},
);
