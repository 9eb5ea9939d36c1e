import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import t from "tap";
import {
	decodePacket,
	encodePacket,
	InvalidMetadataError,
	InvalidPacketError,
	lanConfig,
	Membership,
	MetadataTooLargeError,
	NotAMemberError,
	UdpTransport,
	UnknownVersionError,
	VERSION,
	validateConfig,
} from "../../../agent/membership/index.ts";
import { waitFor } from "../../helpers/index.ts";
import { converged, KEY, scenario, simCluster } from "./sim.ts";

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
	t.ok(c.clock.now() - t0 >= lanConfig().probeIntervalMs, "no one declared it failed before probing it");
	t.same(
		c.nodes.filter((m) => m.id !== "m2" && m.stats.nacksMissed > 0).map((m) => m.id),
		[],
		"relays' nacks arrived within every requester's window (no one blamed itself on a loss-free network)",
	);
	t.ok(
		c.nodes.every((m) => m.health === 0),
		"local health stayed 0 everywhere",
	);
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
	t.equal(c.nodes[3]!.pendingTimers, 0, "the leaver stopped all its timers");

	// The same node restarts (same id, a fresh process at incarnation 1): it refutes 'left'.
	const joins: string[] = [];
	for (const m of c.nodes.slice(0, 3)) m.on("join", (x) => joins.push(`${m.id}:${x.id}`));
	await c.restart(3, 0);
	const back = c.runUntil(() => c.nodes.slice(0, 3).every((m) => m.get("m3")?.state === "alive"), 10_000);
	t.ok(back !== undefined, `the restarted member is alive everywhere again after ${back} ms`);
	t.ok(c.nodes[3]!.get("m3")!.incarnation > 2, "with an incarnation above the one it left with");
	t.same(joins.sort(), ["m0:m3", "m1:m3", "m2:m3"], "each member saw it join again");
});

t.test("a member back on a new address at once (still alive at its old one) is known at the new one", async (t) => {
	const c = await simCluster(5, { seed: 31 });
	t.ok(c.runUntil(() => converged(c.nodes, 5), 10_000) !== undefined, "converged");
	const inc = c.nodes[0]!.get("m3")!.incarnation;
	// A DHCP renewal between two probes: the others still hold m3 alive at its old address and at
	// the incarnation a fresh process starts with.
	await c.kill(3);
	await c.restart(3, 0, "10.7.0.3:7946");
	t.equal(c.nodes[0]!.get("m3")!.state, "alive", "m0 still holds m3 alive (positive control of the set-up)");
	t.equal(c.nodes[0]!.get("m3")!.addr, "10.0.0.3:7946", "at its old address");
	const ms = c.runUntil(
		() =>
			[0, 1, 2, 4].every(
				(i) => c.nodes[i]!.get("m3")?.addr === "10.7.0.3:7946" && c.nodes[i]!.get("m3")?.state === "alive",
			),
		1000,
	);
	t.ok(ms !== undefined, `every member knows m3 at its new address, alive, after ${ms} virtual ms`);
	t.ok(c.nodes[0]!.get("m3")!.incarnation > inc, "with an incarnation above its previous life's");
	c.run(10_000);
	t.ok(
		[0, 1, 2, 4].every((i) => c.nodes[i]!.get("m3")?.state === "alive"),
		"and it stays alive (no one probes the old address into a failure)",
	);
});

t.test("stop() cancels every timer: probes, acks, push-pull and join retries", async (t) => {
	const c = await simCluster(3, { seed: 21, config: { pushPullIntervalMs: 1000 } });
	c.runUntil(() => converged(c.nodes, 3), 10_000);
	// Join retries towards a seed that never answers keep a timer alive.
	c.nodes[2]!.join(["10.9.9.9:7946"]);
	c.net.partition([c.addr(2)], [c.addr(0), c.addr(1)]);
	c.run(3000); // far more than 16 probes and timers later
	for (const m of c.nodes) await m.stop();
	c.run(50); // packets still in flight land (on stopped members)
	t.equal(c.clock.pending(), 0, "no timer is left on the clock after every member stopped");
	const b0 = c.bytesSent();
	c.run(10_000);
	t.equal(c.bytesSent(), b0, "and nothing is sent after stop");
});

t.test("setMeta: others see the new metadata and emit 'update'", async (t) => {
	const c = await simCluster(4, { seed: 23 });
	c.runUntil(() => converged(c.nodes, 4), 10_000);
	const updates: string[] = [];
	for (const m of c.nodes) m.on("update", (x) => updates.push(`${m.id}:${x.id}:${x.meta.labels?.zone}`));
	const inc = c.nodes[1]!.get("m1")!.incarnation;
	c.nodes[1]!.setMeta({ ...c.nodes[1]!.get("m1")!.meta, labels: { zone: "b" } });
	const seen = c.runUntil(() => c.nodes.every((m) => m.get("m1")?.meta.labels?.zone === "b"), 10_000);
	t.ok(seen !== undefined, `everyone has the new labels after ${seen} ms`);
	t.same(updates.sort(), ["m0:m1:b", "m2:m1:b", "m3:m1:b"], "one 'update' event per other member");
	t.ok(
		c.nodes.every((m) => m.get("m1")!.incarnation === inc + 1),
		"at a higher incarnation",
	);
	t.throws(() => c.nodes[1]!.setMeta({ labels: { zone: 1 as unknown as string } }), InvalidMetadataError);
	t.throws(() => c.nodes[1]!.setMeta({ colour: "red" } as never), InvalidMetadataError, "unknown fields refused");
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
	const suspected: string[] = [];
	for (const m of c.nodes) m.on("suspect", (x) => x.id === "m5" && suspected.push(m.id));
	const inc0 = c.nodes[5]!.get("m5")!.incarnation;
	c.net.slow.set(c.addr(5), 250);
	c.run(8000);
	c.net.slow.delete(c.addr(5));
	c.run(8000);
	t.ok(suspected.length > 0, `m5 was suspected (${suspected.length} times)`);
	t.ok(c.nodes[5]!.stats.refutations > 0, `m5 refuted (${c.nodes[5]!.stats.refutations} times)`);
	t.ok(c.nodes[5]!.get("m5")!.incarnation > inc0, "by raising its incarnation");
	t.same(fails, [], "and no one declared it failed");
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
	// No one calls join(): push-pull also syncs with a failed member now and then; the members
	// on the other side refute their death with a higher incarnation and are alive again.
	const merged = c.runUntil(() => converged(c.nodes, 6), 60_000);
	t.ok(merged !== undefined, `merged again ${merged} ms after healing`);
});

t.test("200 simulated members, 5% loss, 2 slow nodes, then a partition: convergence, bytes, merge", async (t) => {
	const seed = 17;
	t.comment(`seed ${seed}`);
	// Push-pull (what merges a healed partition) every 5 s (x4 at 200 members) to keep the test short.
	const r = await scenario(200, {
		seed,
		loss: 0.05,
		slowNodes: 2,
		slowMs: 100,
		soakMs: 30_000,
		partition: true,
		config: { pushPullIntervalMs: 5000 },
	});
	t.comment(JSON.stringify(r));
	t.ok(r.convergeMs < 60_000, `200 members converged in ${r.convergeMs} virtual ms`);
	t.equal(r.falseFailures, 0, "no member was falsely declared failed (loss and slow nodes)");
	t.ok(r.bytesPerSecPerNode < 20_000, `${r.bytesPerSecPerNode} bytes/s per node`);
	t.ok(r.partitionSplitMs > 0, `each half failed the other ${r.partitionSplitMs} ms into the partition`);
	t.ok(r.partitionMergeMs > 0, `and all 200 merged again ${r.partitionMergeMs} ms after it healed`);
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
		v2[0] = VERSION + 1;
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
					statements: { sign: () => new Uint8Array(64), verify: () => false },
					transport: new UdpTransport("127.0.0.1"),
					clusterKey: KEY,
					config: cfg,
					meta: { labels: { x: "y".repeat(5000) } },
				}),
			MetadataTooLargeError,
		);

		// Over real UDP: a member keeps running through all of it and ignores stale news.
		const member = async () => {
			const nodeKey = await generateKeyPair("Ed25519");
			const id = peerIdFromPrivateKey(nodeKey).toString();
			return new Membership({ id, nodeKey, transport: new UdpTransport("127.0.0.1"), clusterKey: KEY, config: cfg });
		};
		const a = await member();
		const b = await member();
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
		const aAddr = a.get(a.id)!.addr;
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
		mallory.send(
			aAddr,
			encodePacket(
				{
					t: "sync",
					from: "m",
					reply: true,
					u: [{ id: "w", addr: "127.0.0.1:1", inc: 1, state: "alive", meta: { colour: "red" } as never, by: "m" }],
				},
				KEY,
			),
		);
		// b refutes nothing here: a dead (and a suspect) claim below b's incarnation is stale.
		b.setMeta({ role: "worker" });
		await waitFor("a sees b's new incarnation", () => a.get(b.id)?.meta.role === "worker");
		const bInc = a.get(b.id)!.incarnation;
		const staleBefore = a.stats.stale;
		for (const state of ["dead", "suspect", "left"] as const)
			mallory.send(
				aAddr,
				encodePacket(
					{ t: "sync", from: "m", reply: true, u: [{ id: b.id, addr: "127.0.0.1:1", inc: bInc - 1, state, by: "m" }] },
					KEY,
				),
			);
		const fromMallory = (c: string) => refused.filter((x) => x === c).length;
		await waitFor("three stale claims counted", () => a.stats.stale >= staleBefore + 3);
		await waitFor("all refusals", () => refused.length >= 8);
		t.same([...new Set(refused.filter((c) => c !== "ERR_STALE_INCARNATION"))].sort(), [
			"ERR_INVALID_META",
			"ERR_INVALID_PACKET",
			"ERR_META_TOO_LARGE",
			"ERR_NOT_A_MEMBER",
			"ERR_UNKNOWN_VERSION",
		]);
		t.ok(fromMallory("ERR_STALE_INCARNATION") >= 3, "each lower-incarnation claim refused as stale");
		t.equal(a.get(b.id)?.state, "alive", "dead, suspect and left claims with a lower incarnation are ignored");
		t.notOk(a.get("w"), "the member with metadata of the wrong shape was not added");
		t.notOk(a.get("z"), "the member with oversized metadata was not added");
		// And the detector still works after all that: stop b, a marks it failed.
		await b.stop();
		await waitFor("a marks b failed", () => a.get(b.id)?.state === "dead", { timeoutMs: 15_000 });
	},
);
