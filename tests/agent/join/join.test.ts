import { generateKeyPair } from "@libp2p/crypto/keys";
import t from "tap";
import {
	fingerprint,
	formatToken,
	Host,
	hashSecret,
	InvalidTokenError,
	JoinDeniedError,
	MemoryAllowList,
	newSecret,
	parseToken,
	RateLimiter,
	requestJoin,
	serveJoin,
	WrongClusterError,
} from "../../../agent/index.ts";
import { tempDir } from "../../helpers/index.ts";

async function host(t: Tap, allow = new MemoryAllowList()) {
	const d = tempDir("host-");
	t.teardown(d.remove);
	const h = await Host.create({ dataDir: d.path, listen: ["/ip4/127.0.0.1/tcp/0"], allowList: allow });
	t.teardown(() => h.stop());
	return { h, dir: d.path, allow };
}
type Tap = { teardown(fn: () => unknown): void };

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

t.test("members-only protocols refuse non-members; members get answers", async (t) => {
	const server = await host(t);
	const client = await host(t);
	await server.h.handle("/tsswarm/echo/1", (msg, ctx) => ctx.send({ echo: msg }));
	const addr = server.h.addrs()[0]!;
	await t.rejects(
		client.h.session(
			addr,
			"/tsswarm/echo/1",
			async (io) => {
				io.send("hi");
				return io.next();
			},
			{ timeoutMs: 3000 },
		),
		"a stranger's stream is closed",
	);
	server.allow.add(client.h.peerId);
	const r = await client.h.session(addr, "/tsswarm/echo/1", async (io) => {
		io.send("hi");
		return io.next();
	});
	t.same(r, { echo: "hi" });
	await t.rejects(
		client.h.session(addr, "/tsswarm/echo/2", async (io) => io.next(), { timeoutMs: 3000 }),
		"an unknown protocol version is refused",
	);
});

t.test("join: tokens checked, cluster proven first, no replay, rotation, rate limit", async (t) => {
	const server = await host(t);
	const clusterKey = await generateKeyPair("Ed25519");
	const fp = fingerprint(clusterKey.publicKey.raw);
	const secrets = { manager: newSecret(), worker: newSecret() };
	const seen: string[] = [];
	const granted: string[] = [];
	await serveJoin(
		server.h,
		{
			clusterId: "c-1",
			clusterKey,
			secretHashes: () => ({ manager: hashSecret(secrets.manager), worker: hashSecret(secrets.worker) }),
			grant: (peer, role) => {
				granted.push(`${peer}:${role}`);
				return { clusterId: "c-1", role, membershipKey: new Uint8Array(32), members: [] };
			},
		},
		{ limiter: new RateLimiter(2, 60_000), onSecretSeen: (m) => seen.push((m as { t: string }).t) },
	);
	const addr = server.h.addrs()[0]!;
	const worker = await host(t);
	const g = await requestJoin(worker.h, addr, formatToken(fp, secrets.worker), {});
	t.equal(g.role, "worker");
	t.same(granted, [`${worker.h.peerId}:worker`]);

	// A token for another cluster: the joiner stops before sending any proof.
	const other = fingerprint((await generateKeyPair("Ed25519")).publicKey.raw);
	const stranger = await host(t);
	seen.length = 0;
	await t.rejects(requestJoin(stranger.h, addr, formatToken(other, secrets.worker), {}), WrongClusterError);
	t.same(seen, ["hello"], "the server never received a join proof");

	await t.rejects(
		requestJoin(stranger.h, addr, formatToken(fp, newSecret()), {}),
		JoinDeniedError,
		"a wrong secret is refused",
	);
	const old = secrets.manager;
	secrets.manager = newSecret();
	await t.rejects(
		requestJoin(stranger.h, addr, formatToken(fp, old), {}),
		/invalid or rotated token/,
		"a rotated-out token is refused",
	);
	const mgr = await requestJoin(stranger.h, addr, formatToken(fp, secrets.manager), {}).catch((e: Error) => e);
	t.ok(
		mgr instanceof Error && /too many join attempts/.test(mgr.message),
		"a third attempt from the same peer within the window is rate limited, even with a good token",
	);
	// Replay: a join proof without a fresh challenge is refused.
	const replay = await stranger.h.session(addr, "/tsswarm/join/1", async (io) => {
		io.send({ t: "join", proof: new Uint8Array(32) });
		return io.next();
	});
	t.match((replay as { reason: string }).reason, /no challenge outstanding|too many/);
	t.throws(() => parseToken("TSWARM-1-short-secret"), InvalidTokenError);
	t.throws(() => parseToken(`TSWARM-2-${fp}-${secrets.worker}`), /version 2/);
});
