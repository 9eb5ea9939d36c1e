// The store on a real libp2p host with fsync'd Raft storage: durable across restarts, and the
// manager protocol refuses malformed requests (named error, node keeps serving).
import t from "tap";
import { Host, MemoryAllowList } from "../../../agent/host/index.ts";
import { MANAGER_PROTOCOL, Manager } from "../../../agent/manager/index.ts";
import { NodeDirectory } from "../../../agent/nodes/index.ts";
import { CLUSTER_ID } from "../../../agent/store/index.ts";
import { tempDir } from "../../helpers/index.ts";
import { oneManager } from "../../helpers/manager.ts";

const noop = (_o: object, _m?: string) => {};
const quiet = { info: noop, warn: noop, error: noop, debug: noop };

const host = (dataDir: string, allow = new MemoryAllowList(), logger = quiet) =>
	Host.create({ dataDir, listen: ["/ip4/127.0.0.1/tcp/0"], allowList: allow, logger });

t.test("a one-manager store survives a restart; bad manager requests are refused", async (t) => {
	const dir = tempDir("tsswarm-store-");
	t.teardown(dir.remove);
	const warnings: Array<{ code?: string; peer?: string }> = [];
	const log = { ...quiet, warn: (o: object) => void warnings.push(o as { code?: string }) };
	const allow = new MemoryAllowList();
	let h = await host(dir.path, allow, log);
	let m = await Manager.start({
		host: h,
		dataRoot: dir.path,
		clusterId: "c1",
		logger: log,
		bootstrap: true,
		directory: new NodeDirectory(),
	});
	t.teardown(async () => {
		await m.stop().catch(() => {});
		await h.stop().catch(() => {});
	});
	await m.initCluster("c1", { addrPools: ["198.19.0.0/16"], subnetSize: 24 });
	const created = (await m.createNetwork({ name: "app" })) as {
		Id: string;
		IPAM: { Config: Array<{ Subnet: string }> };
	};
	t.equal(created.IPAM.Config[0]?.Subnet, "198.19.1.0/24");
	await t.rejects(
		m.createNetwork({ name: "x", subnet: 7 }),
		{ code: "ERR_INVALID_NETWORK" },
		"refused before it travels",
	);

	// A member with a malformed request gets a named error; a non-member's stream is refused.
	const other = tempDir("tsswarm-store-peer-");
	t.teardown(other.remove);
	// The peer counts the manager as a member (so it may dial it); the manager does not, yet.
	const peerAllow = new MemoryAllowList();
	peerAllow.add(h.peerId);
	const peer = await host(other.path, peerAllow);
	t.teardown(() => peer.stop());
	const addr = h.addrs().find((a) => a.includes("/tcp/"))!;
	const ask = (msg: unknown) =>
		peer.session(
			addr,
			MANAGER_PROTOCOL,
			async (io) => {
				io.send(msg);
				return io.next();
			},
			{ timeoutMs: 5000 },
		);
	await t.rejects(ask({ kind: "network.create", body: { name: "x" } }), "a non-member is turned away");
	t.ok(
		warnings.some((w) => w.code === "ERR_NOT_A_MEMBER"),
		"and logged as such",
	);
	allow.add(peer.peerId);
	for (const bad of [{ kind: "drop.tables", body: {} }, { kind: "network.create", body: [1] }, "garbage", null]) {
		const r = (await ask(bad)) as { error?: { code: string } };
		t.equal(r.error?.code, "ERR_BAD_REQUEST", `refused: ${JSON.stringify(bad)}`);
	}
	t.ok(warnings.filter((w) => w.code === "ERR_BAD_REQUEST").length >= 4, "each one logged");
	const viaWorker = (await ask({ kind: "network.create", body: { name: "remote", subnet: "198.19.9.0/24" } })) as {
		error?: { code: string };
	};
	t.equal(viaWorker.error?.code, "ERR_NOT_MANAGER_PEER", "a member that is no manager may not change state");
	t.ok(
		warnings.some((w) => w.code === "ERR_NOT_MANAGER_PEER"),
		"logged",
	);
	t.notOk(
		m.listNetworks().some((n) => n.Name === "remote"),
		"and nothing was written",
	);
	await m.createNetwork({ name: "remote", subnet: "198.19.9.0/24" });

	// Restart from the same directory: everything committed is back (log replayed into the FSM).
	await m.stop();
	await h.stop();
	h = await host(dir.path, allow);
	m = await Manager.start({
		host: h,
		dataRoot: dir.path,
		clusterId: "c1",
		logger: quiet,
		bootstrap: true,
		directory: new NodeDirectory(),
	});
	await m.store.waitForLeader(10_000);
	await m.store.barrier();
	t.same(
		m
			.listNetworks()
			.map((n) => n.Name)
			.sort(),
		["app", "ingress", "remote"],
	);
	const more = (await m.createNetwork({ name: "later" })) as { IPAM: { Config: Array<{ Subnet: string }> } };
	t.equal(more.IPAM.Config[0]?.Subnet, "198.19.2.0/24", "allocation continues where it was");
});

t.test("a write from the API costs one log entry (and one fsync): its barrier writes none", async (t) => {
	const { m } = await oneManager(t, "tsswarm-store-barrier-");
	const stats = () => m.store.raftStats();
	const before = stats();
	for (const name of ["a", "b", "c"]) await m.createNetwork({ name });
	const after = stats();
	t.equal(after.lastLogIndex - before.lastLogIndex, 3, "three network creates, three entries");
	t.equal(after.logWrites - before.logWrites, 3, "and three log writes");

	// Still a barrier: a write proposed before it (and not yet applied) is applied once it resolves.
	const c = m.store.get("cluster", CLUSTER_ID)!;
	const pending = m.store.commit([
		{ op: "update", table: "cluster", id: CLUSTER_ID, version: c.version, value: { ...c.value, nextVni: 4242 } },
	]);
	t.equal(m.store.get("cluster", CLUSTER_ID)?.value.nextVni, c.value.nextVni, "proposed, not applied yet");
	await m.store.barrier();
	t.equal(m.store.get("cluster", CLUSTER_ID)?.value.nextVni, 4242, "the write in flight is applied");
	await pending;
	await m.stop();
	await t.rejects(m.store.barrier(), "a stopped store refuses a barrier");
});
