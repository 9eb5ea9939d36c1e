// Identity is the key, not the address: a node that comes back on a new address (same key, new
// port here, a new IP in the lab) is dialed by its peer id where its signed membership statement
// says — sessions, and Raft's transport with a stale configuration address — and the leader's
// record writer hears of it; members outside the directory, or not alive, are not followed; and
// known addresses do not age out of reach.
import { EventEmitter } from "node:events";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { tcp } from "@libp2p/tcp";
import { createLibp2p } from "libp2p";
import t from "tap";
import { Host, MemoryAllowList } from "../../../agent/host/index.ts";
import { AddressFollower, type MemberView, memberAddrs } from "../../../agent/nodes/index.ts";
import { Libp2pTransport } from "../../../consensus/index.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";
import { quiet } from "../dispatch/fixtures.ts";

const ECHO = "/tsswarm/test-echo/1";

async function serve(t: Tap, dataDir: string, allow: MemoryAllowList): Promise<{ h: Host; addr: string }> {
	const h = await Host.create({ dataDir, listen: ["/ip4/127.0.0.1/tcp/0"], allowList: allow, logger: quiet });
	t.teardown(() => h.stop());
	await h.handle(ECHO, (msg, ctx) => {
		ctx.send({ echo: msg, at: h.addrs()[0] });
		ctx.close();
	});
	const m = /^\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(h.addrs()[0]!)!;
	return { h, addr: `${m[1]}:${m[2]}` };
}
type Tap = { teardown(fn: () => unknown): void };

/** A host with its own fresh key, removed at teardown. */
async function client(t: Tap, allow: MemoryAllowList): Promise<Host> {
	const d = tempDir("tsswarm-addr-c-");
	t.teardown(d.remove);
	const h = await Host.create({ dataDir: d.path, listen: ["/ip4/127.0.0.1/tcp/0"], allowList: allow, logger: quiet });
	t.teardown(() => h.stop());
	return h;
}

const echo = (c: Host, id: string, hint?: string) =>
	c.session(
		id,
		ECHO,
		async (io) => {
			io.send("hi");
			return (await io.next()) as { echo: string };
		},
		{ timeoutMs: 3000, ...(hint ? { hint } : {}) },
	);

class Members extends EventEmitter<{ join: [MemberView]; alive: [MemberView]; update: [MemberView] }> {
	list: MemberView[] = [];
	all() {
		return this.list;
	}
}

t.test("memberAddrs: the statement's multiaddrs, else its ip:port", async (t) => {
	t.same(memberAddrs({ id: "x", addr: "1.2.3.4:2377", state: "alive", meta: {} }), ["1.2.3.4:2377"]);
	t.same(
		memberAddrs({ id: "x", addr: "1.2.3.4:2377", state: "alive", meta: { addresses: ["/ip4/5.6.7.8/tcp/2377"] } }),
		["/ip4/5.6.7.8/tcp/2377"],
	);
	t.same(memberAddrs({ id: "x", addr: "nonsense", state: "alive", meta: {} }), [], "a malformed address is none");
});

t.test("a node back on a new address is dialed by id where membership says; Raft too", async (t) => {
	const dir = tempDir("tsswarm-addr-");
	t.teardown(dir.remove);
	const cAllow = new MemoryAllowList();
	const c = await client(t, cAllow);
	const sAllow = new MemoryAllowList();
	sAllow.add(c.peerId);
	const s1 = await serve(t, dir.path, sAllow);
	const id = s1.h.peerId;
	cAllow.add(id);
	t.same((await echo(c, id, s1.addr)).echo, "hi", "by id with the directory's address as hint (positive control)");

	// The node restarts with the same key at another address; the old one is gone.
	await s1.h.stop();
	const s2 = await serve(t, dir.path, sAllow);
	t.equal(s2.h.peerId, id, "same identity");
	t.not(s2.addr, s1.addr, "new address");
	await t.rejects(echo(c, id, s1.addr), "before membership tells, the known address is the old one: the dial fails");

	// Membership's signed statement of the node (its addr and advertised multiaddrs).
	const members = new Members();
	const directory = Object.assign(new EventEmitter<{ changed: [] }>(), {
		entries: new Map([[id, { addr: s1.addr }]]),
		get(x: string) {
			return this.entries.get(x);
		},
	});
	const learned: string[] = [];
	const writes: Array<[string, string]> = [];
	let leader = false;
	const follower = new AddressFollower({
		self: c.peerId,
		host: {
			learnAddrs: (x, a) => {
				learned.push(x);
				return c.learnAddrs(x, a);
			},
		},
		directory,
		members,
		recordWriter: () =>
			leader
				? async (x, a) => {
						writes.push([x, a]);
					}
				: undefined,
		logger: quiet,
		intervalMs: 50,
	});
	follower.start();
	t.teardown(() => follower.stop());
	const stranger = "12D3KooWGzPSW1bUs2tWpA8XgD3VVQcr1Rh3kLJZ7cn5nDKfYo6e";
	members.emit("alive", { id: stranger, addr: "127.0.0.1:9", state: "alive", meta: {} });
	members.emit("alive", { id, addr: s2.addr, state: "suspect", meta: { addresses: s2.h.addrs() } });
	await new Promise((r) => setTimeout(r, 100));
	t.same(learned, [], "neither a peer outside the directory nor a member not alive is followed");

	const me: MemberView = { id, addr: s2.addr, state: "alive", meta: { addresses: s2.h.addrs() } };
	members.list = [me];
	members.emit("alive", me);
	const r = await waitFor("the session by id to reach the new address", () =>
		echo(c, id, s1.addr).catch(() => undefined),
	);
	t.same(r.echo, "hi", "by id, at the new address, though the hint is the old one");
	t.same(writes, [], "not the leader: no record written");
	leader = true;
	await waitFor("the leader's record writer to be called", () => writes.length > 0, { timeoutMs: 2000 });
	t.same(writes[0], [id, s2.addr], "the leader writes the node's own new address into its record");
	directory.entries.set(id, { addr: s2.addr });
	const n = writes.length;
	await new Promise((r) => setTimeout(r, 200));
	t.equal(writes.length, n, "once the record has it, nothing more is written");

	// Raft: the configuration still names the old address; the transport dials the peer id.
	const got: unknown[] = [];
	const ts = new Libp2pTransport({ node: s2.h.node, clusterId: "c1" });
	await ts.start({ onMessage: (_from, m) => got.push(m) });
	t.teardown(() => ts.stop());
	const tc = new Libp2pTransport({ node: c.node, clusterId: "c1" });
	const failures: string[] = [];
	await tc.start({ onMessage: () => {}, onSendFailure: (_to, e) => failures.push(e.message) });
	t.teardown(() => tc.stop());
	await c.node.hangUp(s2.h.node.peerId);
	tc.send(id, `/ip4/127.0.0.1/tcp/${s1.addr.split(":")[1]}/p2p/${id}`, { hello: 1 });
	await waitFor("the raft message to arrive at the new address", () => got.length > 0, { timeoutMs: 8000 });
	t.same(got, [{ hello: 1 }], "delivered by peer id despite the stale configuration address");

	// A peer store that knows nothing of the peer takes the configuration's address as a hint.
	const fAllow = new MemoryAllowList();
	fAllow.add(id);
	const f = await client(t, fAllow);
	sAllow.add(f.peerId);
	const tf = new Libp2pTransport({ node: f.node, clusterId: "c1" });
	await tf.start({ onMessage: () => {} });
	t.teardown(() => tf.stop());
	tf.send(id, `${s2.h.addrs()[0]!.replace(/\/p2p\/.*$/, "")}/p2p/${id}`, { hello: 2 });
	await waitFor("the raft message from a fresh peer store", () => got.length > 1, { timeoutMs: 8000 });
	t.same(got[1], { hello: 2 }, "the configuration address, as a hint, is dialed when nothing else is known");
});

t.test("addresses do not age out: the host keeps them, Raft's transport falls back to its hint", async (t) => {
	// The host's peer store keeps a member's addresses past libp2p's default hour.
	const c = await client(t, new MemoryAllowList());
	const other = await client(t, new MemoryAllowList());
	t.ok(await c.learnAddrs(other.peerId, other.addrs()), "learned");
	t.equal(await c.learnAddrs(other.peerId, other.addrs()), false, "the same again changes nothing");
	const real = Date.now;
	Date.now = () => real() + 2 * 3_600_000;
	let kept: number;
	try {
		kept = (await c.node.peerStore.get(other.node.peerId)).addresses.length;
	} finally {
		Date.now = real;
	}
	t.equal(kept, 1, "two hours later the address is still known");

	// A peer store that did hide the address (libp2p's default, here 100 ms): the configuration's
	// address is dialed, as adding it to the peer store again would not make it fresh.
	const server = await createLibp2p({
		addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
		transports: [tcp()],
		connectionEncrypters: [noise()],
		streamMuxers: [yamux()],
	});
	t.teardown(() => server.stop());
	const aging = await createLibp2p({
		addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
		transports: [tcp()],
		connectionEncrypters: [noise()],
		streamMuxers: [yamux()],
		peerStore: { maxAddressAge: 100 },
	});
	t.teardown(() => aging.stop());
	const at = server.getMultiaddrs()[0]!;
	await aging.peerStore.merge(server.peerId, { multiaddrs: [at.decapsulateCode(0x01a5)] });
	await new Promise((r) => setTimeout(r, 200));
	await aging.peerStore.merge(server.peerId, { multiaddrs: [at.decapsulateCode(0x01a5)] });
	t.equal((await aging.peerStore.get(server.peerId)).addresses.length, 0, "control: the aged address stays hidden");
	const got: unknown[] = [];
	const ts = new Libp2pTransport({ node: server, clusterId: "c1" });
	await ts.start({ onMessage: (_f, m) => got.push(m) });
	t.teardown(() => ts.stop());
	const ta = new Libp2pTransport({ node: aging, clusterId: "c1" });
	await ta.start({ onMessage: () => {} });
	t.teardown(() => ta.stop());
	ta.send(server.peerId.toString(), at.toString(), { hello: 3 });
	await waitFor("the raft message through the configuration's address", () => got.length > 0, { timeoutMs: 8000 });
	t.same(got, [{ hello: 3 }], "delivered");
});
