import { generateKeyPair } from "@libp2p/crypto/keys";
import { multiaddr } from "@multiformats/multiaddr";
import { pack } from "msgpackr";
import t from "tap";
import {
	fingerprint,
	formatToken,
	Host,
	type HostOptions,
	hashSecret,
	InvalidTokenError,
	JOIN_PROTOCOL,
	JoinDeniedError,
	MemoryAllowList,
	newSecret,
	ProtocolVersionError,
	parseToken,
	RateLimiter,
	requestJoin,
	Sessions,
	serveJoin,
	WrongClusterError,
} from "../../../agent/index.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";

type Tap = { teardown(fn: () => unknown): void };
type Refusal = { peer: string; protocol: string; code?: string; name: string };

async function host(t: Tap, o: Partial<HostOptions> = {}) {
	const d = tempDir("host-");
	t.teardown(d.remove);
	const allow = (o.allowList as MemoryAllowList | undefined) ?? new MemoryAllowList();
	const h = await Host.create({ dataDir: d.path, listen: ["/ip4/127.0.0.1/tcp/0"], ...o, allowList: allow });
	t.teardown(() => h.stop());
	const refused: Refusal[] = [];
	h.on("refused", ({ peer, protocol, error }) => refused.push({ peer, protocol, code: error.code, name: error.name }));
	return { h, dir: d.path, allow, refused };
}

const echo = (h: Host, addr: string, msg: unknown, protocol = "/tsswarm/echo/1") =>
	h.session(
		addr,
		protocol,
		async (io) => {
			io.send(msg);
			return io.next();
		},
		{ timeoutMs: 5000 },
	);

/** A frame as Host frames it: u32 big-endian length, then msgpackr. */
const frame = (v: unknown) => {
	const body = pack(v);
	const b = Buffer.alloc(4 + body.length);
	b.writeUInt32BE(body.length, 0);
	body.copy(b, 4);
	return b;
};

t.test("the node key persists: same peer id after a restart", async (t) => {
	const d = tempDir("host-");
	t.teardown(d.remove);
	const a = await Host.create({ dataDir: d.path, listen: ["/ip4/127.0.0.1/tcp/0"], allowList: new MemoryAllowList() });
	const id = a.peerId;
	await a.stop();
	const b = await Host.create({ dataDir: d.path, listen: ["/ip4/127.0.0.1/tcp/0"], allowList: new MemoryAllowList() });
	t.equal(b.peerId, id);
	await b.stop();
});

t.test("the connection gater refuses a non-member's connection; members connect", async (t) => {
	const server = await host(t);
	const client = await host(t);
	await server.h.handle("/tsswarm/echo/1", (msg, ctx) => ctx.send({ echo: msg }));
	const addr = server.h.addrs()[0]!;
	client.allow.add(server.h.peerId); // the client would dial it; the server does not know the client
	const t0 = Date.now();
	const err = await echo(client.h, addr, "hi").catch((e: Error) => e);
	t.ok(err instanceof Error, "the stranger's session fails");
	t.ok(Date.now() - t0 < 4000, `at once (${Date.now() - t0} ms), not by the 5 s session timeout`);
	await waitFor("the server's refusal", () => server.refused.length > 0);
	t.match(
		server.refused[0],
		{ peer: client.h.peerId, protocol: "connection", code: "ERR_NOT_A_MEMBER", name: "NotAMemberPeerError" },
		"refused by the gater with NotAMemberPeerError, naming the peer",
	);
	t.equal(server.h.node.getConnections().length, 0, "no connection is left open");

	// We do not dial non-members either (unless a joiner's session asks for it).
	const other = await host(t);
	await t.rejects(echo(other.h, addr, "x"), "a peer not in our own allow-list is not dialed");
	t.ok(other.refused.some((r) => r.code === "ERR_NOT_A_MEMBER" && r.peer === server.h.peerId));

	server.allow.add(client.h.peerId);
	t.same(await echo(client.h, addr, "hi"), { echo: "hi" }, "a member is admitted and answered");
});

t.test("newcomers: only the join protocol, for a grace period; unknown versions refused", async (t) => {
	const server = await host(t, { admitNewcomers: true, newcomerGraceMs: 1500 });
	const stranger = await host(t);
	await server.h.handle("/tsswarm/echo/1", (msg, ctx) => ctx.send({ echo: msg }));
	await server.h.handle(JOIN_PROTOCOL, (_msg, ctx) => ctx.send({ t: "hi-newcomer" }), { public: true });
	const addr = server.h.addrs()[0]!;
	const s = (proto: string) =>
		stranger.h.session(
			addr,
			proto,
			async (io) => {
				io.send({ t: "hello" });
				return io.next();
			},
			{ stranger: true, timeoutMs: 5000 },
		);
	t.same(await s(JOIN_PROTOCOL), { t: "hi-newcomer" }, "a newcomer reaches the join protocol");
	const err = await s("/tsswarm/echo/1").catch((e: Error) => e);
	t.ok(err instanceof Error, "but not a members-only protocol");
	await waitFor("the refusal", () =>
		server.refused.find((r) => r.protocol === "/tsswarm/echo/1" && r.peer === stranger.h.peerId),
	);
	t.match(
		server.refused.find((r) => r.protocol === "/tsswarm/echo/1"),
		{ name: "NotAMemberPeerError" },
	);
	await waitFor(
		"the newcomer's connection closed after its grace period",
		() => server.h.node.getConnections().filter((c) => c.remotePeer.toString() === stranger.h.peerId).length === 0,
		{ timeoutMs: 5000 },
	);

	// An unknown version of a protocol: a named error on both sides, logged with peer and protocol.
	const member = await host(t);
	server.allow.add(member.h.peerId);
	member.allow.add(server.h.peerId);
	await t.rejects(
		echo(member.h, addr, "hi", "/tsswarm/echo/2"),
		ProtocolVersionError,
		"the client gets ProtocolVersionError",
	);
	t.match(
		server.refused.find((r) => r.protocol === "/tsswarm/echo/2"),
		{ peer: member.h.peerId, name: "ProtocolVersionError", code: "ERR_PROTOCOL_VERSION" },
		"the server logged it with the peer and the protocol",
	);
	await t.rejects(echo(member.h, addr, "hi", "/tsswarm/echo/99"), ProtocolVersionError, "far versions too");
	t.same(await echo(member.h, addr, "still"), { echo: "still" }, "and version 1 still works");
});

t.test("garbage, truncated, oversized and stalled frames on join and a members-only protocol", async (t) => {
	const server = await host(t, { admitNewcomers: true, maxFrameBytes: 1024, streamIdleMs: 400 });
	const client = await host(t, { maxFrameBytes: 1024 });
	await server.h.handle("/tsswarm/echo/1", (msg, ctx) => ctx.send({ echo: msg }));
	const clusterKey = await generateKeyPair("Ed25519");
	await serveJoin(server.h, {
		clusterId: "c",
		clusterKey,
		secretHashes: () => ({ manager: hashSecret(newSecret()), worker: hashSecret(newSecret()) }),
		grant: () => {
			throw new Error("no grant in this test");
		},
	});
	server.allow.add(client.h.peerId);
	client.allow.add(server.h.peerId);
	const addr = server.h.addrs()[0]!;
	const conn = await client.h.node.dial(multiaddr(addr));
	const cases: Array<[string, Buffer, string, boolean]> = [
		// [what, bytes, expected error name, close our end after sending]
		["garbage bytes", Buffer.from([0, 0, 0, 4, 0xc1, 0xc1, 0xc1, 0xc1]), "InvalidMessageError", false],
		["an oversized frame", Buffer.from([0, 0, 0x10, 0]), "FrameTooLargeError", false],
		["a truncated frame", frame({ t: "hello", pad: "x".repeat(50) }).subarray(0, 20), "TruncatedFrameError", true],
		["a stalled frame", frame({ t: "hello" }).subarray(0, 3), "StreamIdleError", false],
		["nothing at all", Buffer.alloc(0), "StreamIdleError", false],
	];
	for (const proto of ["/tsswarm/echo/1", JOIN_PROTOCOL]) {
		for (const [what, bytes, name, close] of cases) {
			const before = server.refused.length;
			const stream = await conn.newStream(proto);
			if (bytes.length > 0) stream.send(bytes);
			if (close) await stream.close();
			const r = await waitFor(`${proto}: ${what} refused`, () =>
				server.refused.slice(before).find((x) => x.protocol === proto),
			);
			t.match(r, { peer: client.h.peerId, name }, `${proto}: ${what} -> ${name}, logged with the peer`);
			t.ok(r.code, `with a code (${r.code})`);
		}
	}
	// A well-formed frame that is not a join message.
	const before = server.refused.length;
	const bad = await client.h.session(addr, JOIN_PROTOCOL, async (io) => {
		io.send({ t: "nonsense" });
		return io.next();
	});
	t.match(bad, { t: "denied", code: "ERR_BAD_MESSAGE" });
	t.match(server.refused.slice(before)[0], { name: "BadMessageError", peer: client.h.peerId });
	t.same(await echo(client.h, addr, "alive"), { echo: "alive" }, "the node keeps serving");
});

t.test("join: tokens checked, cluster proven first, rotation, rate limit, replay refused", async (t) => {
	const server = await host(t, { admitNewcomers: true });
	const clusterKey = await generateKeyPair("Ed25519");
	const fp = fingerprint(clusterKey.publicKey.raw);
	const secrets = { manager: newSecret(), worker: newSecret() };
	const seen: Array<{ t: string; proof?: Uint8Array }> = [];
	const granted: string[] = [];
	await serveJoin(
		server.h,
		{
			clusterId: "c-1",
			clusterKey,
			secretHashes: () => ({ manager: hashSecret(secrets.manager), worker: hashSecret(secrets.worker) }),
			grant: async (peer, role) => {
				granted.push(`${peer}:${role}`);
				server.allow.add(peer);
				return { clusterId: "c-1", role, membershipKey: new Uint8Array(32), members: [] };
			},
		},
		{ limiter: new RateLimiter(7, 60_000), onSecretSeen: (m) => seen.push(m as { t: string }) },
	);
	const addr = server.h.addrs()[0]!;
	const worker = await host(t);
	const g = await requestJoin(worker.h, addr, formatToken(fp, secrets.worker), {});
	t.equal(g.role, "worker");
	t.same(granted, [`${worker.h.peerId}:worker`]);
	const goodProof = seen.find((m) => m.t === "join")!.proof!;

	// Replay: the worker's valid proof, sent again (by the worker itself, on a new session), is
	// refused — in a new session it answers the wrong challenge, and without a hello there is none.
	const replay = async (withHello: boolean) =>
		worker.h.session(addr, JOIN_PROTOCOL, async (io) => {
			if (withHello) {
				io.send({ t: "hello", nonce: new Uint8Array(32).fill(7) });
				await io.next();
			}
			io.send({ t: "join", proof: goodProof });
			return io.next();
		});
	t.match(await replay(true), { t: "denied", code: "ERR_JOIN_PROOF" }, "a replayed proof fails the fresh challenge");
	t.match(await replay(false), { t: "denied", code: "ERR_NO_CHALLENGE" }, "a proof without a challenge is refused");
	t.same(granted.length, 1, "nothing more was granted");
	t.ok(
		server.refused.some((r) => r.code === "ERR_JOIN_PROOF" && r.peer === worker.h.peerId) &&
			server.refused.some((r) => r.code === "ERR_NO_CHALLENGE"),
		"both logged with the peer and a named code",
	);

	// A token for another cluster: the joiner stops before sending any proof.
	const other = fingerprint((await generateKeyPair("Ed25519")).publicKey.raw);
	const stranger = await host(t);
	seen.length = 0;
	await t.rejects(requestJoin(stranger.h, addr, formatToken(other, secrets.worker), {}), WrongClusterError);
	t.same(
		seen.map((m) => m.t),
		["hello"],
		"the server never received a join proof",
	);
	await t.rejects(
		requestJoin(stranger.h, addr, formatToken(fp, newSecret()), {}),
		{ name: "JoinDeniedError", serverCode: "ERR_JOIN_PROOF" },
		"a wrong secret is refused",
	);
	const old = secrets.manager;
	secrets.manager = newSecret();
	await t.rejects(
		requestJoin(stranger.h, addr, formatToken(fp, old), {}),
		{ name: "JoinDeniedError", serverCode: "ERR_JOIN_PROOF" },
		"a rotated-out token is refused",
	);
	// 1 + 2 + 2 messages so far from the stranger; its next hello is the 6th, the join the 7th,
	// then the limiter (7 per minute) is empty: the next attempt is refused at its hello.
	const mgr = await requestJoin(stranger.h, addr, formatToken(fp, secrets.manager), {});
	t.equal(mgr.role, "manager", "the current manager token works");
	const limited = await requestJoin(stranger.h, addr, formatToken(fp, secrets.manager), {}).catch((e: Error) => e);
	t.ok(limited instanceof JoinDeniedError, "the next attempt from the same peer is refused...");
	t.equal((limited as JoinDeniedError).serverCode, "ERR_RATE_LIMITED", "...as rate limited, at its hello");
	t.ok(
		server.refused.some((r) => r.code === "ERR_RATE_LIMITED" && r.peer === stranger.h.peerId),
		"and logged",
	);

	t.throws(() => parseToken("TSWARM-1-short-secret"), InvalidTokenError);
	t.throws(() => parseToken(`TSWARM-2-${fp}-${secrets.worker}`), /version 2/);
});

t.test("join state is bounded: rate-limit buckets and challenges expire and are capped", async (t) => {
	const rl = new RateLimiter(2, 1000, 100);
	for (let i = 0; i < 1000; i++) rl.take(`peer${i}`, i);
	t.ok(rl.size <= 100, `at most 100 buckets (${rl.size})`);
	t.notOk(rl.take("x", 0) && rl.take("x", 0) && rl.take("x", 0), "a bucket still limits");
	const s = new Sessions(30_000, 50);
	for (let i = 0; i < 500; i++) s.put(`peer${i}`, new Uint8Array(32), i);
	t.ok(s.size <= 50, `at most 50 outstanding challenges (${s.size})`);
	s.put("late", new Uint8Array(32), 0);
	t.equal(s.take("late", 31_000), undefined, "a challenge older than its TTL is gone");
	s.put("once", new Uint8Array(32), 0);
	t.ok(s.take("once", 10));
	t.equal(s.take("once", 11), undefined, "and a challenge answers once");
});
