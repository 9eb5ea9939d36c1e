// A manager whose replica started without its keys (a promoted node no manager answered in time)
// seals its Raft files as soon as the keys arrive: what it wrote in the clear until then is
// rewritten sealed, what it writes after is sealed, and a restart with the keys reads it all back.
// It used to write plain Raft entries and snapshots until its next start.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { Host, MemoryAllowList } from "../../../agent/host/index.ts";
import { newManagerKeys, readKeyFile } from "../../../agent/keyring/index.ts";
import { Manager } from "../../../agent/manager/index.ts";
import { NodeDirectory } from "../../../agent/nodes/index.ts";
import { filesUnder, uniqueName, waitFor } from "../../helpers/index.ts";
import { oneManager } from "../../helpers/manager.ts";

const noop = (_o: object, _m?: string) => {};
const quiet = { info: noop, warn: noop, error: noop, debug: noop };

/** The files under dir whose bytes hold `marker`. */
const holding = (dir: string, marker: string) =>
	filesUnder(dir).filter((f) => readFileSync(f).includes(Buffer.from(marker)));

t.test("keys arriving after start seal the Raft files at once, the plain entries too", async (t) => {
	const { m, h, dir } = await oneManager(t, "tsswarm-sealing-");
	const raftDir = join(dir, "raft");
	const early = uniqueName("sealed-early");
	await m.createNetwork({ name: early });
	t.ok(holding(raftDir, early).length > 0, "control: unsealed, the Raft log holds the network name in the clear");
	t.notOk(m.store.sealedAtRest(), "control: the replica started unsealed");

	// What acquireKeys does once another manager gave the cluster secret (the key file, then the rest).
	const keyFile = join(dir, "keys");
	const keys = newManagerKeys();
	await m.adoptKeys(keys, keyFile);
	t.ok(m.store.sealedAtRest(), "sealed now");
	t.same(readKeyFile(keyFile).dataKey, keys.dataKey, "its data key is on disk");
	await t.rejects(m.adoptKeys(newManagerKeys(), keyFile), { code: "ERR_KEYS_HELD" }, "other keys are refused");
	t.same(readKeyFile(keyFile).dataKey, keys.dataKey, "and did not replace the key file");

	const late = uniqueName("sealed-late");
	await m.createNetwork({ name: late });
	t.ok(m.store.byName("networks", late), "control: the later network is in the store");
	await waitFor("no Raft file to hold a network name in the clear", () =>
		holding(raftDir, early).length + holding(raftDir, late).length === 0 ? true : undefined,
	);
	for (const name of [early, late]) t.same(holding(raftDir, name), [], `no Raft file holds ${name} in the clear`);
	await m.stop();
	await h.stop();

	const h2 = await Host.create({ dataDir: dir, listen: ["/ip4/127.0.0.1/tcp/0"], allowList: new MemoryAllowList() });
	t.teardown(() => h2.stop().catch(() => {}));
	const start = (o: { keys?: typeof keys; keyFile?: string }) =>
		Manager.start({ host: h2, dataRoot: dir, clusterId: "c1", logger: quiet, directory: new NodeDirectory(), ...o });
	await t.rejects(start({}), { code: "ERR_CORRUPT_LOG" }, "without the data key the log does not open");
	const m2 = await start({ keys, keyFile });
	t.teardown(() => m2.stop().catch(() => {}));
	t.ok(m2.store.sealedAtRest(), "restarted sealed");
	await m2.store.waitForLeader(10_000);
	await waitFor("the restarted replica to apply its log", () =>
		m2.store.byName("networks", early) && m2.store.byName("networks", late) ? true : undefined,
	);
	t.pass("after a restart with its keys the store holds both networks");
});

t.test("a replica started with its keys seals what an earlier unsealed run left plain", async (t) => {
	// The keys were written, and the agent stopped (or crashed) before the replica was sealed: its
	// next start opens the store with the data key and reseals before Raft starts.
	const { m, h, dir } = await oneManager(t, "tsswarm-sealing-open-");
	const raftDir = join(dir, "raft");
	const name = uniqueName("sealed-at-open");
	await m.createNetwork({ name });
	await m.stop();
	await h.stop();
	t.ok(holding(raftDir, name).length > 0, "control: the stopped replica's files hold the name in the clear");

	const keys = newManagerKeys();
	const h2 = await Host.create({ dataDir: dir, listen: ["/ip4/127.0.0.1/tcp/0"], allowList: new MemoryAllowList() });
	t.teardown(() => h2.stop().catch(() => {}));
	const m2 = await Manager.start({
		host: h2,
		dataRoot: dir,
		clusterId: "c1",
		logger: quiet,
		directory: new NodeDirectory(),
		keys,
	});
	t.teardown(() => m2.stop().catch(() => {}));
	t.same(holding(raftDir, name), [], "started with the keys, no Raft file holds the name in the clear");
	await m2.store.waitForLeader(10_000);
	await waitFor("the replica to apply its log", () => (m2.store.byName("networks", name) ? true : undefined));
	t.pass("and the store still holds the network");
});
