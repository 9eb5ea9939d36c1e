// What a member holding the cluster (membership) key cannot do, over real UDP on 127.0.0.1 with
// real Ed25519 node keys: forge another member's leave, incarnation, address or metadata, add a
// member, fail a live one on its word, forge others' confirmations of a suspicion, or replay
// captured packets; and that a restarted member (a new boot) is still accepted.
import { generateKeyPair } from "@libp2p/crypto/keys";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import t, { type Test } from "tap";
import {
	claimBytes,
	decodePacket,
	ed25519Statements,
	encodePacket,
	lanConfig,
	type MemberMeta,
	Membership,
	type Packet,
	type PacketTransport,
	probeTag,
	statementBytes,
	UdpTransport,
	type Update,
} from "../../../agent/membership/index.ts";
import { waitFor } from "../../helpers/index.ts";
import { KEY } from "./sim.ts";

const cfg = lanConfig();

/** A UDP transport that keeps a copy of every packet it sends (what an eavesdropper would capture). */
class TapTransport implements PacketTransport {
	readonly inner: UdpTransport;
	readonly sent: Array<{ to: string; data: Uint8Array }> = [];
	constructor(port = 0) {
		this.inner = new UdpTransport("127.0.0.1", port);
	}
	get addr(): string {
		return this.inner.addr;
	}
	get bytesSent(): number {
		return this.inner.bytesSent;
	}
	start(onPacket: (from: string, data: Uint8Array) => void): Promise<void> {
		return this.inner.start(onPacket);
	}
	send(to: string, data: Uint8Array): void {
		this.sent.push({ to, data: Buffer.from(data) });
		this.inner.send(to, data);
	}
	stop(): Promise<void> {
		return this.inner.stop();
	}
}

async function nodeKey(): Promise<{ key: Ed25519PrivateKey; id: string }> {
	const key = await generateKeyPair("Ed25519");
	return { key, id: peerIdFromPrivateKey(key).toString() };
}

async function member(
	t: Test,
	k: { key: Ed25519PrivateKey; id: string },
	o: { port?: number; meta?: MemberMeta } = {},
): Promise<{ m: Membership; tap: TapTransport }> {
	const tap = new TapTransport(o.port);
	const m = new Membership({ id: k.id, nodeKey: k.key, transport: tap, clusterKey: KEY, config: cfg, meta: o.meta });
	await m.start();
	t.teardown(() => m.stop());
	return { m, tap };
}

/**
 * A member that is nothing but a socket and a node key (what a key holder controls, or a member
 * that acks probes and never refutes): its signed alive statement, and acks to pings addressed
 * to it; everything else it receives is ignored.
 */
async function puppet(t: Test) {
	const k = await nodeKey();
	const st = ed25519Statements(k.key, k.id);
	const sock = new UdpTransport("127.0.0.1");
	await sock.start((from, data) => {
		try {
			const p = decodePacket(data, KEY, cfg.maxPacketBytes);
			if (p.t === "ping" && (p.to === k.id || p.to === probeTag(k.id)))
				sock.send(from, encodePacket({ t: "ack", seq: p.seq, u: [] }, KEY));
		} catch {}
	});
	t.teardown(() => sock.stop());
	const alive = (): Update => ({
		id: k.id,
		addr: sock.addr,
		inc: 1,
		state: "alive",
		meta: {},
		by: k.id,
		sig: st.sign(statementBytes(k.id, "alive", 1, sock.addr, {})),
	});
	/** This member's own signed claim about another (what it may say in its own name). */
	const claim = (about: { id: string; addr: string; incarnation: number }, state: "suspect" | "dead"): Update => ({
		id: about.id,
		addr: about.addr,
		inc: about.incarnation,
		state,
		by: k.id,
		csig: st.sign(claimBytes(k.id, about.id, state, about.incarnation)),
	});
	return {
		...k,
		st,
		addr: sock.addr,
		alive,
		claim,
		send: (to: string, p: Packet) => sock.send(to, encodePacket(p, KEY)),
	};
}

/** a, b, c joined; mallory: a member's socket and node key, and the cluster key. */
async function cluster(t: Test) {
	const keys = { a: await nodeKey(), b: await nodeKey(), c: await nodeKey(), mallory: await nodeKey() };
	const a = await member(t, keys.a, { meta: { role: "manager" } });
	const b = await member(t, keys.b, { meta: { role: "worker" } });
	const c = await member(t, keys.c, { meta: { role: "worker" } });
	b.m.join([a.tap.addr]);
	c.m.join([a.tap.addr]);
	await waitFor("a, b and c see each other", () => [a, b, c].every((x) => x.m.live().length === 3));
	const replies: Packet[] = [];
	const mallory = new UdpTransport("127.0.0.1");
	await mallory.start((_from, data) => {
		try {
			replies.push(decodePacket(data, KEY, cfg.maxPacketBytes));
		} catch {}
	});
	t.teardown(() => mallory.stop());
	const malloryStatements = ed25519Statements(keys.mallory.key, keys.mallory.id);
	/** An update about `about`, unsigned or signed with mallory's own node key. */
	const forge = (u: Omit<Update, "by" | "sig">, signed: boolean): Update => ({
		...u,
		by: keys.mallory.id,
		...(signed
			? {
					sig: malloryStatements.sign(
						statementBytes(u.id, u.state === "left" ? "left" : "alive", u.inc, u.addr, u.meta),
					),
				}
			: {}),
	});
	const tell = (to: string, u: Update[]) =>
		mallory.send(to, encodePacket({ t: "sync", from: keys.mallory.id, reply: true, u }, KEY));
	return { a, b, c, keys, mallory, replies, forge, tell };
}

t.test(
	"a member with the cluster key cannot make another leave; the node's own signed leave is accepted",
	async (t) => {
		const { a, b, c, forge, tell } = await cluster(t);
		const left: string[] = [];
		for (const x of [a, c]) x.m.on("leave", (m) => left.push(`${x.m.id}:${m.id}`));
		const bNow = a.m.get(b.m.id)!;
		for (const signed of [false, true])
			for (const to of [a.tap.addr, c.tap.addr])
				tell(to, [
					forge({ id: b.m.id, addr: bNow.addr, inc: bNow.incarnation + 1, state: "left", meta: bNow.meta }, signed),
				]);
		await waitFor(
			"a and c refused the forged leaves (or, without signatures, took them)",
			() =>
				[a, c].every((x) => x.m.get(b.m.id)?.state !== "alive" || x.m.stats.badSignatures >= 2) &&
				[a, c].every((x) => x.m.get(b.m.id)?.state !== "alive" || x.m.stats.badSignatures >= 2),
		);
		t.same(
			[a, c].map((x) => x.m.get(b.m.id)?.state),
			["alive", "alive"],
			"b is still alive at a and c",
		);
		t.same(left, [], "no leave event");
		t.ok(
			[a, c].every((x) => x.m.stats.badSignatures >= 2),
			"the unsigned and the wrongly signed leave were each refused and counted",
		);

		// Positive control: b's own leave, signed by b, is accepted everywhere.
		await b.m.leave(300);
		await waitFor("a and c mark b left", () => [a, c].every((x) => x.m.get(b.m.id)?.state === "left"));
		t.same(left.sort(), [`${a.m.id}:${b.m.id}`, `${c.m.id}:${b.m.id}`].sort(), "one leave event each");
	},
);

t.test(
	"forged alive (higher incarnation, other address or metadata, a new member) is refused; own updates are accepted",
	async (t) => {
		const { a, b, keys, mallory, forge, tell } = await cluster(t);
		const before = { ...a.m.get(b.m.id)! };
		const z = await nodeKey();
		for (const signed of [false, true])
			tell(a.tap.addr, [
				forge(
					{ id: b.m.id, addr: mallory.addr, inc: before.incarnation + 5, state: "alive", meta: { role: "manager" } },
					signed,
				),
				forge({ id: z.id, addr: mallory.addr, inc: 1, state: "alive", meta: { role: "manager" } }, signed),
				// A suspicion at an incarnation b never signed must not raise what a knows either.
				forge({ id: b.m.id, addr: mallory.addr, inc: before.incarnation + 9, state: "dead", meta: {} }, signed),
			]);
		// With the claims refused and counted, or (without signatures) taken:
		await waitFor(
			"a refused the forged statements",
			() => a.m.stats.badSignatures >= 5 || a.m.get(b.m.id)!.addr !== before.addr || a.m.get(z.id) !== undefined,
		);
		const now = a.m.get(b.m.id)!;
		t.equal(now.addr, before.addr, "b's address is unchanged");
		t.equal(now.meta.role, "worker", "b's metadata is unchanged");
		t.ok(
			now.incarnation < before.incarnation + 5,
			`b's incarnation was not raised by the forgery (${now.incarnation})`,
		);
		t.notOk(a.m.get(z.id), "no member was added on mallory's word");
		t.notOk(a.m.get(keys.mallory.id), "nor mallory itself, which never spoke for itself");
		t.ok(a.m.stats.badSignatures >= 5, `refused and counted: ${a.m.stats.badSignatures}`);

		// Positive control: b's own new metadata (signed by b, at a higher incarnation) is accepted.
		b.m.setMeta({ role: "worker", labels: { zone: "x" } });
		await waitFor("a sees b's new metadata", () => a.m.get(b.m.id)?.meta.labels?.zone === "x");
		t.equal(a.m.get(b.m.id)!.addr, before.addr, "at b's own address");
		t.equal(a.m.get(b.m.id)!.state, "alive");
	},
);

t.test(
	"a captured packet replayed is dropped and counted; fresh packets from the same sender are accepted",
	async (t) => {
		const { a, b, mallory, replies } = await cluster(t);
		// A probe b sent to a, captured on the wire.
		const captured = await waitFor("b pinged a", () =>
			b.tap.sent.find((x) => x.to === a.tap.addr && decodePacket(x.data, KEY, cfg.maxPacketBytes).t === "ping"),
		);
		const seq = (decodePacket(captured.data, KEY, cfg.maxPacketBytes) as { seq: number }).seq;
		const refused: string[] = [];
		a.m.on("refused", ({ error }) => refused.push((error as Error & { code: string }).code));
		const replayed0 = a.m.stats.replayed ?? 0;
		mallory.send(a.tap.addr, captured.data);
		mallory.send(a.tap.addr, captured.data);
		// Positive control: a fresh ping, sent after the replays, is answered.
		mallory.send(a.tap.addr, encodePacket({ t: "ping", seq: 777_777, to: a.m.id, u: [] }, KEY));
		await waitFor("a answered the fresh ping", () => replies.some((p) => p.t === "ack" && p.seq === 777_777));
		t.notOk(
			replies.some((p) => p.t === "ack" && p.seq === seq),
			"the replayed ping was not answered",
		);
		t.equal(a.m.stats.replayed - replayed0, 2, "both replays were dropped and counted");
		t.same([...new Set(refused)], ["ERR_REPLAYED_PACKET"], "as replays");

		// A packet stamped outside the skew bound (an old capture whose window a has forgotten) is dropped too.
		const stale = { boot: Buffer.alloc(8, 7), seq: 1, ts: Date.now() - 10 * cfg.maxClockSkewMs };
		mallory.send(a.tap.addr, encodePacket({ t: "ping", seq: 888_888, to: a.m.id, u: [] }, KEY, stale));
		mallory.send(
			a.tap.addr,
			encodePacket({ t: "ping", seq: 888_889, to: a.m.id, u: [] }, KEY, { ...stale, seq: 2, ts: Date.now() }),
		);
		await waitFor("a answered the well-stamped ping", () => replies.some((p) => p.t === "ack" && p.seq === 888_889));
		t.notOk(
			replies.some((p) => p.t === "ack" && p.seq === 888_888),
			"the old-stamped ping was not answered",
		);
		t.ok(refused.includes("ERR_PACKET_TIME"), "refused for its stamp");

		// The same sender's fresh packets (same boot, later sequence numbers) still get through.
		b.m.setMeta({ role: "worker", labels: { after: "replay" } });
		await waitFor("a sees b's update sent after the replay", () => a.m.get(b.m.id)?.meta.labels?.after === "replay");
		t.equal(a.m.get(b.m.id)?.state, "alive");
	},
);

t.test(
	"a restarted member (new boot, counter reset, lower incarnation) is accepted with its new metadata",
	async (t) => {
		const { a, b, keys } = await cluster(t);
		// Some history: b's incarnation and packet counter move on.
		b.m.setMeta({ role: "worker", version: "1" });
		b.m.setMeta({ role: "worker", version: "1.1" });
		await waitFor("a sees b's version 1.1", () => a.m.get(b.m.id)?.meta.version === "1.1");
		const inc = a.m.get(b.m.id)!.incarnation;
		const port = Number(b.tap.addr.split(":")[1]);
		await b.m.stop(); // a crash: no leave
		// The same node key on the same port, a fresh process: incarnation 1, sequence from 1, a new boot id.
		const b2 = await member(t, keys.b, { port, meta: { role: "worker", version: "2" } });
		b2.m.join([a.tap.addr]);
		await waitFor(
			"a has b alive with its new metadata",
			() => a.m.get(b.m.id)?.state === "alive" && a.m.get(b.m.id)?.meta.version === "2",
		);
		t.ok(a.m.get(b.m.id)!.incarnation > inc, "above the incarnation of its previous life");
		t.equal(b2.m.live().length, 3, "and b sees everyone");
		t.equal(a.m.stats.replayed ?? 0, 0, "none of its packets was taken for a replay");
	},
);

t.test(
	"a key holder's dead claim about a live member makes it suspect, not failed; it refutes; a killed member still fails",
	async (t) => {
		const { a, b, c, forge, tell } = await cluster(t);
		// d: a member in everyone's view, whose node key the attacker holds (its claims verify).
		const d = await puppet(t);
		for (const x of [a, b, c]) tell(x.tap.addr, [d.alive()]);
		await waitFor("a, b and c see d", () => [a, b, c].every((x) => x.m.get(d.id)?.state === "alive"));
		const events: string[] = [];
		for (const x of [a, c]) {
			x.m.on("fail", (m) => events.push(`${x.m.id === a.m.id ? "a" : "c"} fail ${m.id === b.m.id ? "b" : m.id}`));
			x.m.on("suspect", (m) => m.id === b.m.id && events.push(`${x.m.id === a.m.id ? "a" : "c"} suspect b`));
		}
		const bNow = a.m.get(b.m.id)!;
		const inc0 = bNow.incarnation;
		// d's own, validly signed dead claim at b's known incarnation (SWIM would fail b at once),
		// and dead claims in mallory's name (not a member) and in c's name (signed by d's key).
		const byC = { ...d.claim(bNow, "dead"), by: c.m.id };
		for (const x of [a, c])
			d.send(x.tap.addr, {
				t: "sync",
				from: d.id,
				reply: true,
				u: [d.claim(bNow, "dead"), forge({ id: b.m.id, addr: bNow.addr, inc: inc0, state: "dead" }, false), byC],
			});
		await waitFor("b refuted: alive at a higher incarnation at a and c", () =>
			[a, c].every((x) => x.m.get(b.m.id)?.state === "alive" && x.m.get(b.m.id)!.incarnation > inc0),
		);
		t.ok(b.m.stats.refutations > 0, `b heard the claim and refuted it (${b.m.stats.refutations}x)`);
		t.same(
			events.filter((e) => e.includes("fail")),
			[],
			"neither a nor c declared b failed on d's word",
		);
		t.ok(
			events.includes("a suspect b") || events.includes("c suspect b"),
			`the dead claim counted as a suspicion (${events.join(", ")})`,
		);
		t.ok(
			[a, c].every((x) => x.m.stats.unknownClaimers >= 1 && x.m.stats.badSignatures >= 1),
			"the claim in a non-member's name and the one in c's name with d's signature were refused",
		);

		// Positive control: a member that is really gone is still declared failed by the others.
		const cId = c.m.id;
		await c.m.stop();
		const t0 = Date.now();
		await waitFor("a and b mark the stopped c failed", () => [a, b].every((x) => x.m.get(cId)?.state === "dead"), {
			timeoutMs: 10_000,
		});
		t.ok(events.includes(`a fail ${cId}`), `a emitted fail for c after ${Date.now() - t0} ms`);
	},
);

t.test("forged confirmations do not shorten a suspicion below what one real claimer gives; real ones do", async (t) => {
	// a is the receiver; every other member is a puppet that acks a's probes and never refutes,
	// so a suspicion at a ends only by a's own timer, and how long it takes shows what a counted.
	const a = await member(t, await nodeKey());
	const d = await puppet(t);
	const [w1, w2, w3] = [await puppet(t), await puppet(t), await puppet(t)];
	const [v1, v2, v3] = [await puppet(t), await puppet(t), await puppet(t)];
	d.send(a.tap.addr, { t: "sync", from: d.id, reply: true, u: [d, w1, w2, w3, v1, v2, v3].map((p) => p.alive()) });
	await waitFor("a sees all eight", () => a.m.live().length === 8);
	const failedAt = new Map<string, number>();
	a.m.on("fail", (m) => failedAt.set(m.id, performance.now()));
	const live = a.m.live().length;
	const min = cfg.suspicionMult * Math.log10(live + 1) * cfg.probeIntervalMs;
	const max = min * cfg.suspicionMaxTimeoutMult;
	const sybils = await Promise.all([nodeKey(), nodeKey(), nodeKey()]);
	const at = (v: { id: string }) => a.m.get(v.id)!;
	const t0 = performance.now();
	d.send(a.tap.addr, {
		t: "sync",
		from: d.id,
		reply: true,
		u: [
			// v1: one real claimer, and its claim is "dead": a suspicion with no confirmation.
			d.claim(at(v1), "dead"),
			// v2: the same real claim, plus confirmations in members' names signed with d's key,
			// unsigned ones, and validly self-signed ones from peer ids that are not members.
			d.claim(at(v2), "suspect"),
			...[w1, w2, w3].map((w) => ({ ...d.claim(at(v2), "suspect"), by: w.id })),
			...[w1, w2, w3].map((w) => ({ ...d.claim(at(v2), "suspect"), by: w.id, csig: undefined })),
			...sybils.map((k) => {
				const inc = at(v2).incarnation;
				const csig = ed25519Statements(k.key, k.id).sign(claimBytes(k.id, v2.id, "suspect", inc));
				return { id: v2.id, addr: v2.addr, inc, state: "suspect" as const, by: k.id, csig };
			}),
			// v3 (positive control): K real claimers, each signing in its own name.
			...[d, w1, w2, w3].map((w) => w.claim(at(v3), "suspect")),
		],
	});
	await waitFor("a failed v1, v2 and v3", () => failedAt.size === 3, { timeoutMs: max + 5000 });
	const took = (v: { id: string }) => Math.round(failedAt.get(v.id)! - t0);
	t.comment(
		`suspicion min ${Math.round(min)} ms, max ${Math.round(max)} ms; v1 ${took(v1)} ms, v2 ${took(v2)} ms, v3 ${took(v3)} ms`,
	);
	t.ok(took(v1) >= max - 100, `one real dead claim: a failed v1 only at its own full timeout (${took(v1)} ms)`);
	t.ok(
		took(v2) >= max - 100 && took(v2) >= took(v1) - 100,
		`forged confirmations did not shorten v2's suspicion (${took(v2)} ms vs ${took(v1)} ms)`,
	);
	t.ok(took(v3) < (min + max) / 2, `K real confirmations shortened v3's to near the minimum (${took(v3)} ms)`);
	t.ok(a.m.stats.badSignatures >= 6, `forged confirmations refused as badly signed (${a.m.stats.badSignatures})`);
	t.ok(a.m.stats.unknownClaimers >= 3, `non-members' claims refused (${a.m.stats.unknownClaimers})`);
});
