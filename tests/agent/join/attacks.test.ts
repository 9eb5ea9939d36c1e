// Join under attack: a relaying or forging man in the middle, a server that answers garbage, and a
// flood of join attempts from fresh peer ids (which cost nothing to mint).
import { randomBytes } from "node:crypto";
import { generateKeyPair } from "@libp2p/crypto/keys";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import t from "tap";
import {
	fingerprint,
	formatToken,
	Host,
	type HostOptions,
	hashSecret,
	JOIN_PROTOCOL,
	type JoinGrant,
	MemoryAllowList,
	newSecret,
	RateLimiter,
	requestJoin,
	serveJoin,
	TokenBucket,
} from "../../../agent/index.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";

type Tap = { teardown(fn: () => unknown): void };

async function host(t: Tap, o: Partial<HostOptions> = {}) {
	const d = tempDir("join-");
	t.teardown(d.remove);
	const allow = new MemoryAllowList();
	const h = await Host.create({ dataDir: d.path, listen: ["/ip4/127.0.0.1/tcp/0"], ...o, allowList: allow });
	t.teardown(() => h.stop());
	const refused: Array<{ peer: string; code?: string }> = [];
	h.on("refused", ({ peer, error }) => refused.push({ peer, code: error.code }));
	return { h, allow, refused };
}

/** A real join server; `grant` may be replaced to answer a malformed welcome. */
async function cluster(
	t: Tap,
	o: { grant?: (peer: string) => unknown; global?: TokenBucket; limiter?: RateLimiter } = {},
) {
	const server = await host(t, { admitNewcomers: true });
	const clusterKey = (await generateKeyPair("Ed25519")) as Ed25519PrivateKey;
	const secret = newSecret();
	const granted: string[] = [];
	await serveJoin(
		server.h,
		{
			clusterId: "c-1",
			clusterKey,
			secretHashes: () => ({ manager: hashSecret(newSecret()), worker: hashSecret(secret) }),
			grant: async (peer, role) => {
				granted.push(peer);
				server.allow.add(peer);
				return (o.grant?.(peer) ?? {
					clusterId: "c-1",
					role,
					membershipKey: new Uint8Array(32),
					members: [],
				}) as JoinGrant;
			},
		},
		{ limiter: o.limiter ?? new RateLimiter(1000, 1), ...(o.global ? { global: o.global } : {}) },
	);
	return { ...server, clusterKey, token: formatToken(fingerprint(clusterKey.publicKey.raw), secret), granted };
}

t.test("a man in the middle with the right cluster key but no valid signature gets no proof", async (t) => {
	const real = await cluster(t);
	const realAddr = real.h.addrs()[0]!;
	// The MITM relays the joiner's hello to the real server and its challenge back: the right key
	// and a genuine signature, but over the real server's session with the MITM, not this one.
	const mitm = await host(t, { admitNewcomers: true });
	const fromJoiner: string[] = [];
	let forge = false;
	await mitm.h.handle(
		JOIN_PROTOCOL,
		async (msg, ctx) => {
			const m = msg as { t: string };
			fromJoiner.push(m.t);
			if (m.t !== "hello") return ctx.close();
			const ch = (await mitm.h.session(
				realAddr,
				JOIN_PROTOCOL,
				async (io) => {
					io.send(msg);
					return io.next();
				},
				{ stranger: true, timeoutMs: 5000 },
			)) as Record<string, unknown>;
			ctx.send(forge ? { ...ch, sig: randomBytes(64) } : ch);
		},
		{ public: true },
	);
	const joiner = await host(t);
	const mitmAddr = mitm.h.addrs()[0]!;
	for (const how of ["relayed", "forged"]) {
		forge = how === "forged";
		fromJoiner.length = 0;
		await t.rejects(
			requestJoin(joiner.h, mitmAddr, real.token, {}),
			{
				name: "ClusterSignatureError",
				code: "ERR_CLUSTER_SIGNATURE",
				message: /signature over this session is invalid/,
			},
			`${how} challenge: refused with ClusterSignatureError`,
		);
		t.same(fromJoiner, ["hello"], `${how}: the MITM received the hello and no proof`);
	}
	t.same(real.granted, [], "nothing was granted through the MITM");
	// Positive control: the same joiner and token, straight to the real server.
	const g = await requestJoin(joiner.h, realAddr, real.token, {});
	t.equal(g.role, "worker");
	t.same(real.granted, [joiner.h.peerId]);
});

t.test("a garbage challenge or a malformed welcome: a named error on the joiner, no crash", async (t) => {
	// Challenges: a server that answers hello with garbage (it needs no key for that).
	const liar = await host(t, { admitNewcomers: true });
	let answer: unknown;
	await liar.h.handle(JOIN_PROTOCOL, (_msg, ctx) => ctx.send(answer), { public: true });
	const joiner = await host(t);
	const someToken = formatToken(fingerprint(randomBytes(32)), newSecret());
	const challenges: Array<[string, unknown, RegExp]> = [
		["a number", 42, /challenge .*expected a map, got number/],
		["a string", "hello?", /expected a map, got "hello\?"/],
		["a list", [1, 2], /expected a map, got a list of 2/],
		["another message", { t: "welcome" }, /expected t "challenge", got "welcome"/],
		["no fields", { t: "challenge" }, /clusterPub must be 32 bytes/],
		[
			"a short key",
			{ t: "challenge", clusterPub: new Uint8Array(31), sig: new Uint8Array(64), nonce: new Uint8Array(32) },
			/clusterPub must be 32 bytes/,
		],
		[
			"a string signature",
			{ t: "challenge", clusterPub: new Uint8Array(32), sig: "x", nonce: new Uint8Array(32) },
			/sig must be 64 bytes/,
		],
		["no nonce", { t: "challenge", clusterPub: new Uint8Array(32), sig: new Uint8Array(64) }, /nonce must be 32 bytes/],
	];
	for (const [what, a, why] of challenges) {
		answer = a;
		await t.rejects(
			requestJoin(joiner.h, liar.h.addrs()[0]!, someToken, {}),
			{ name: "MalformedJoinReplyError", code: "ERR_BAD_JOIN_REPLY", message: why },
			`challenge: ${what}`,
		);
	}

	// Welcomes: a real server (valid key, valid signature) whose grant is malformed.
	let welcome: unknown;
	const srv = await cluster(t, { grant: () => welcome });
	const key = new Uint8Array(32);
	const welcomes: Array<[string, unknown, RegExp]> = [
		["no fields", {}, /welcome .*clusterId must be a string/],
		[
			"a numeric cluster id",
			{ clusterId: 7, role: "worker", membershipKey: key, members: [] },
			/clusterId must be a string.*got number/,
		],
		[
			"an unknown role",
			{ clusterId: "c", role: "root", membershipKey: key, members: [] },
			/role must be manager or worker, got "root"/,
		],
		[
			"a short membership key",
			{ clusterId: "c", role: "worker", membershipKey: new Uint8Array(3), members: [] },
			/membershipKey must be 32 bytes/,
		],
		[
			"a string key",
			{ clusterId: "c", role: "worker", membershipKey: "k", members: [] },
			/membershipKey must be 32 bytes/,
		],
		[
			"members not a list",
			{ clusterId: "c", role: "worker", membershipKey: key, members: "all" },
			/members must be a list/,
		],
		[
			"a member without addr",
			{ clusterId: "c", role: "worker", membershipKey: key, members: [{ id: 5 }] },
			/members\[0\] must be \{id: string, role: manager or worker, addr: string\}/,
		],
		[
			"a member with an unknown role",
			{ clusterId: "c", role: "worker", membershipKey: key, members: [{ id: "a", role: "boss", addr: "b" }] },
			/members\[0\] must be .*got a map/,
		],
		[
			"a null member",
			{ clusterId: "c", role: "worker", membershipKey: key, members: [{ id: "a", role: "worker", addr: "b" }, null] },
			/members\[1\]/,
		],
	];
	for (const [what, w, why] of welcomes) {
		welcome = w;
		await t.rejects(
			requestJoin(joiner.h, srv.h.addrs()[0]!, srv.token, {}),
			{ name: "MalformedJoinReplyError", code: "ERR_BAD_JOIN_REPLY", message: why },
			`welcome: ${what}`,
		);
	}
	// Positive control: a well-formed welcome from the same server to the same joiner.
	welcome = {
		clusterId: "c-2",
		role: "manager",
		membershipKey: key,
		members: [{ id: "p", role: "manager", addr: "127.0.0.1:1" }],
	};
	t.same(
		await requestJoin(joiner.h, srv.h.addrs()[0]!, srv.token, {}),
		{
			clusterId: "c-2",
			role: "manager",
			membershipKey: key,
			members: [{ id: "p", role: "manager", addr: "127.0.0.1:1" }],
		},
		"a good welcome is taken, field by field",
	);
});

t.test("join attempts are bounded over all peers: a flood from fresh peer ids is refused", async (t) => {
	// The bucket, by its clock: a burst, then one per everyMs.
	const b = new TokenBucket(3, 100, 0);
	t.same([b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false]);
	t.equal(b.take(50), false, "half a period refills half a token");
	t.equal(b.take(100), true, "a full period refills one");

	const burst = 4;
	const everyMs = 2500;
	const global = new TokenBucket(burst, everyMs);
	const srv = await cluster(t, { global });
	const addr = srv.h.addrs()[0]!;
	// 12 fresh identities, one hello each: no per-peer limit is ever reached. They start 250 ms
	// apart: libp2p itself refuses more than 5 connections a second from one IP (here all are
	// 127.0.0.1), which a flood from many addresses would not meet.
	const flood = await Promise.all(Array.from({ length: 12 }, () => host(t)));
	const t0 = Date.now();
	const answers = await Promise.all(
		flood.map(async ({ h }, i) => {
			await new Promise((r) => setTimeout(r, i * 250));
			return h.session(
				addr,
				JOIN_PROTOCOL,
				async (io) => {
					io.send({ t: "hello", nonce: randomBytes(32) });
					return (await io.next()) as { t: string; code?: string };
				},
				{ stranger: true, timeoutMs: 10_000 },
			);
		}),
	);
	const elapsed = Date.now() - t0;
	const challenged = answers.filter((a) => a.t === "challenge").length;
	const limited = answers.filter((a) => a.t === "denied" && a.code === "ERR_JOIN_RATE_LIMITED").length;
	t.ok(challenged >= 1, `the first attempts are served (${challenged})`);
	t.ok(
		challenged <= burst + Math.ceil(elapsed / everyMs),
		`at most the burst plus the refill were served (${challenged} in ${elapsed} ms)`,
	);
	t.equal(challenged + limited, answers.length, "every other attempt was refused as ERR_JOIN_RATE_LIMITED");
	t.ok(limited >= 12 - burst - Math.ceil(elapsed / everyMs), `refused: ${limited}`);
	t.ok(
		srv.refused.filter((r) => r.code === "ERR_JOIN_RATE_LIMITED").length === limited,
		"each refusal logged by the host with its peer",
	);

	// After the window, a legitimate joiner (hello + join: two tokens) gets in.
	const legit = await host(t);
	await waitFor("the global bucket to refill", () => global.available() >= 2, {
		timeoutMs: 3 * everyMs,
		intervalMs: 100,
	});
	const g = await requestJoin(legit.h, addr, srv.token, {});
	t.equal(g.role, "worker", "the join after the window succeeds");
	t.same(srv.granted, [legit.h.peerId]);
});
