import type { Libp2p } from "@libp2p/interface";
import t from "tap";
import {
	createRaftNode,
	encodeFrame,
	FrameDecoder,
	Libp2pTransport,
	MemNetwork,
	RAFT_PROTOCOL,
	type Transport,
	UnauthorizedPeerError,
} from "../../../consensus/index.ts";
import { waitFor } from "../../helpers/index.ts";

interface Pair {
	a: Transport;
	b: Transport;
	bAddress: string;
	close(): Promise<void>;
}

function compliance(name: string, makePair: () => Promise<Pair>): void {
	t.test(`${name}: in-order delivery, large messages, unreachable peers`, async (t) => {
		const p = await makePair();
		t.teardown(() => p.close());
		const got: Array<{ from: string; msg: unknown }> = [];
		const failures: string[] = [];
		await p.a.start({ onMessage() {}, onSendFailure: (to) => failures.push(to) });
		await p.b.start({ onMessage: (from, msg) => got.push({ from, msg }) });
		for (let i = 0; i < 300; i++) p.a.send(p.b.localId, p.bAddress, { seq: i });
		await waitFor("300 messages", () => got.length >= 300);
		t.same(
			got.map((g) => (g.msg as { seq: number }).seq),
			Array.from({ length: 300 }, (_, i) => i),
			"in order, none lost or duplicated",
		);
		t.ok(
			got.every((g) => g.from === p.a.localId),
			"the sender is identified",
		);
		const big = { blob: new Uint8Array(2 << 20).fill(9) };
		p.a.send(p.b.localId, p.bAddress, big);
		await waitFor("the 2 MiB message", () => got.length === 301);
		t.equal((got[300]!.msg as typeof big).blob.length, 2 << 20);
		p.a.send("nobody", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK", { x: 1 });
		await waitFor("a send failure report", () => failures.includes("nobody"), { timeoutMs: 10_000 });
	});
}

compliance("MemTransport", async () => {
	const net = new MemNetwork();
	const a = net.transport("a");
	const b = net.transport("b");
	return { a, b, bAddress: "b", close: async () => Promise.all([a.stop(), b.stop()]).then(() => {}) };
});

/** Keeps the structured warnings a component logs, to assert what it named. */
class RecordingLogger {
	readonly warnings: Array<Record<string, unknown>> = [];
	debug() {}
	info() {}
	warn(obj: object) {
		this.warnings.push(obj as Record<string, unknown>);
	}
	error() {}
}

async function libp2pPair(clusterA = "c1", clusterB = "c1", logger?: RecordingLogger) {
	const na = await createRaftNode({ listen: ["/ip4/127.0.0.1/tcp/0"] });
	const nb = await createRaftNode({ listen: ["/ip4/127.0.0.1/tcp/0"] });
	const a = new Libp2pTransport({ node: na, clusterId: clusterA });
	const b = new Libp2pTransport({ node: nb, clusterId: clusterB, maxFrameBytes: 4 << 20, logger });
	const close = async () => {
		await a.stop();
		await b.stop();
		await na.stop();
		await nb.stop();
	};
	return { na, nb, a, b, bAddress: nb.getMultiaddrs()[0]!.toString(), close };
}

compliance("Libp2pTransport", libp2pPair);

// patches/@chainsafe+libp2p-yamux: window updates only once half the receive window (256 KiB at
// first) is consumed. Many small and mid-sized messages far beyond the window, in both directions at
// once, must all arrive in order: a window that is never refilled would stall them.
t.test("Libp2pTransport streams many times the yamux window in order, both ways", async (t) => {
	const p = await libp2pPair();
	t.teardown(() => p.close());
	const atA: number[] = [];
	const atB: number[] = [];
	const seqOf = (m: unknown) => (m as { seq: number; pad: Uint8Array }).seq;
	await p.a.start({ onMessage: (_f, m) => atA.push(seqOf(m)) });
	await p.b.start({ onMessage: (_f, m) => atB.push(seqOf(m)) });
	const aAddress = p.na.getMultiaddrs()[0]!.toString();
	// Open both streams first: while a stream is being dialled the transport queues only 1024 frames.
	p.a.send(p.b.localId, p.bAddress, { seq: -1, pad: new Uint8Array(0) });
	p.b.send(p.a.localId, aAddress, { seq: -1, pad: new Uint8Array(0) });
	await waitFor("both streams open", () => atA.length === 1 && atB.length === 1);
	atA.length = 0;
	atB.length = 0;
	// 3000 messages of 100 B to 6 KiB: about 9 MiB each way, so ~36 windows of 256 KiB.
	const N = 3000;
	const pad = (i: number) => new Uint8Array(100 + ((i * 37) % 6000)).fill(i & 0xff);
	for (let i = 0; i < N; i++) {
		p.a.send(p.b.localId, p.bAddress, { seq: i, pad: pad(i) });
		p.b.send(p.a.localId, aAddress, { seq: i, pad: pad(i) });
		// Yield now and then, as Raft does between batches, so frames interleave with window updates.
		if (i % 200 === 199) await new Promise((r) => setImmediate(r));
	}
	await waitFor(`${N} messages each way`, () => atA.length >= N && atB.length >= N, { timeoutMs: 60_000 });
	const want = Array.from({ length: N }, (_, i) => i);
	t.same(atB, want, "a → b: all in order, none lost or duplicated");
	t.same(atA, want, "b → a: all in order, none lost or duplicated");
});

async function rawSend(from: Libp2p, to: Libp2p, chunks: Uint8Array[]): Promise<void> {
	const s = await from.dialProtocol(to.getMultiaddrs()[0]!, RAFT_PROTOCOL);
	for (const c of chunks) s.send(c);
	await s.close().catch(() => {});
}

t.test("Libp2pTransport refuses bad input, names it, and keeps serving", async (t) => {
	const log = new RecordingLogger();
	const p = await libp2pPair("c1", "c1", log);
	t.teardown(() => p.close());
	const got: unknown[] = [];
	await p.a.start({ onMessage() {} });
	await p.b.start({ onMessage: (_f, m) => got.push(m) });
	const mallory = await createRaftNode({ listen: ["/ip4/127.0.0.1/tcp/0"] });
	t.teardown(() => mallory.stop());

	// Garbage: a length prefix promising a frame, then bytes that are not msgpack.
	const garbage = Buffer.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]);
	await rawSend(mallory, p.nb, [garbage]);
	await waitFor("garbage refused", () => p.b.counters.refused >= 1);
	// Over the size bound: refused from the length prefix alone.
	const huge = Buffer.alloc(4);
	huge.writeUInt32BE(64 << 20);
	await rawSend(mallory, p.nb, [huge]);
	await waitFor("oversized refused", () => p.b.counters.refused >= 2);
	// Another cluster's frame.
	await rawSend(mallory, p.nb, [encodeFrame({ c: "other-cluster", m: { hi: 1 } }, 1024)]);
	await waitFor("wrong cluster refused", () => p.b.counters.refused >= 3);
	// A truncated frame: half a frame and then the stream ends: nothing is delivered.
	const frame = encodeFrame({ c: "c1", m: { half: true } }, 1024);
	await rawSend(mallory, p.nb, [frame.subarray(0, frame.length - 3)]);
	await waitFor("the truncated stream noticed", () => p.b.counters.truncated >= 1);
	t.same(got, [], "nothing bad was delivered");
	// Each refusal is logged with the peer and a named error with a stable code.
	const mal = mallory.peerId.toString();
	t.same(
		log.warnings.filter((w) => w.error !== undefined).map((w) => [w.peer, w.error, w.code]),
		[
			[mal, "InvalidMessageError", "ERR_INVALID_MESSAGE"],
			[mal, "FrameTooLargeError", "ERR_INVALID_MESSAGE"],
			[mal, "WrongClusterError", "ERR_WRONG_CLUSTER"],
		],
	);
	t.ok(
		log.warnings.some((w) => w.peer === mal && typeof w.bytes === "number" && w.bytes > 0),
		"the truncated frame is logged with the peer and its size",
	);
	// The node still serves honest peers.
	p.a.send(p.b.localId, p.bAddress, { ok: true });
	await waitFor("an honest message after all that", () => got.length === 1);
	t.same(got, [{ ok: true }]);
});

t.test(
	"Libp2pTransport authorize hook: unauthorized peers are reset before decoding, revocation cuts a live stream",
	async (t) => {
		const log = new RecordingLogger();
		const na = await createRaftNode({ listen: ["/ip4/127.0.0.1/tcp/0"] });
		const nb = await createRaftNode({ listen: ["/ip4/127.0.0.1/tcp/0"] });
		const nm = await createRaftNode({ listen: ["/ip4/127.0.0.1/tcp/0"] });
		const allowed = new Set([na.peerId.toString()]);
		const asked: Array<[string, string]> = [];
		const a = new Libp2pTransport({ node: na, clusterId: "c1" });
		const mallory = new Libp2pTransport({ node: nm, clusterId: "c1" });
		const b = new Libp2pTransport({
			node: nb,
			clusterId: "c1",
			logger: log,
			authorize: (peerId, protocol) => {
				asked.push([peerId, protocol]);
				return allowed.has(peerId);
			},
		});
		t.teardown(async () => {
			for (const tr of [a, mallory, b]) await tr.stop();
			for (const n of [na, nb, nm]) await n.stop();
		});
		const got: Array<{ from: string; msg: unknown }> = [];
		await a.start({ onMessage() {} });
		await mallory.start({ onMessage() {} });
		await b.start({ onMessage: (from, msg) => got.push({ from, msg }) });
		const bAddress = nb.getMultiaddrs()[0]!.toString();
		const aId = na.peerId.toString();
		const mId = nm.peerId.toString();

		// Positive control: the authorized peer's messages arrive.
		a.send(b.localId, bAddress, { seq: 1 });
		await waitFor("the authorized peer's message", () => got.length === 1);
		t.same(got[0], { from: aId, msg: { seq: 1 } });
		t.ok(
			asked.some(([p, proto]) => p === aId && proto === RAFT_PROTOCOL),
			"the hook is asked with the peer id and the protocol",
		);

		// An unauthorized peer speaking the protocol correctly (right cluster id) is reset.
		mallory.send(b.localId, bAddress, { type: "heartbeat", term: 99, from: mId, to: b.localId, commit: 99, ctx: 0 });
		await waitFor("mallory refused", () => b.counters.unauthorized >= 1);
		// Garbage from it is refused by the hook, not by the decoder: nothing of it was decoded.
		const refusedBefore = b.counters.refused;
		const s = await nm.dialProtocol(nb.getMultiaddrs()[0]!, RAFT_PROTOCOL);
		try {
			s.send(Buffer.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]));
		} catch {} // the reset may have arrived already: then not even the bytes left
		await s.close().catch(() => {});
		await waitFor("the raw stream refused", () => b.counters.unauthorized >= 2);
		t.equal(b.counters.refused, refusedBefore, "the decoder never saw mallory's bytes");
		const refusals = log.warnings.filter((w) => w.error === "UnauthorizedPeerError");
		t.ok(refusals.length >= 2, "each refusal is logged");
		t.same(
			[refusals[0]!.peer, refusals[0]!.protocol, refusals[0]!.code],
			[mId, RAFT_PROTOCOL, UnauthorizedPeerError.code],
			"with the peer, the protocol and the error's stable code",
		);
		t.equal(UnauthorizedPeerError.code, "ERR_UNAUTHORIZED_PEER");

		// Revoking the authorized peer cuts its live stream at its next frame.
		allowed.delete(aId);
		const before = b.counters.unauthorized;
		a.send(b.localId, bAddress, { seq: 2 });
		await waitFor("the revoked peer refused", () => b.counters.unauthorized > before);
		t.ok(
			got.every((g) => g.from === aId && (g.msg as { seq: number }).seq === 1),
			"only the authorized message was ever delivered",
		);
		// Re-authorized, it reconnects and is served again.
		allowed.add(aId);
		await waitFor(
			"the re-authorized peer's message",
			() => {
				a.send(b.localId, bAddress, { seq: 3 });
				return got.some((g) => (g.msg as { seq: number }).seq === 3);
			},
			{ timeoutMs: 10_000 },
		);
		t.equal(got.filter((g) => g.from === mId).length, 0, "nothing from mallory was delivered");
	},
);

t.test("FrameDecoder reassembles frames split anywhere and bounds them", async (t) => {
	const d = new FrameDecoder(1024);
	const bytes = Buffer.concat([encodeFrame({ a: 1 }, 1024), encodeFrame({ b: "two" }, 1024)]);
	const out: unknown[] = [];
	for (const byte of bytes) out.push(...d.push(Uint8Array.of(byte)));
	t.same(out, [{ a: 1 }, { b: "two" }]);
	t.equal(d.pending(), 0);
	t.throws(() => encodeFrame({ s: "x".repeat(2000) }, 1024), /exceeds the 1024-byte bound/);
});
