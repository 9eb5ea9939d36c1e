import t from "tap";
import { KvCluster } from "../../../consensus/examples/kv-server/cluster.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

async function put(port: number, key: string, value: string): Promise<number> {
	const r = await fetch(`http://127.0.0.1:${port}/v3/kv/put`, {
		method: "POST",
		body: JSON.stringify({ key: b64(key), value: b64(value) }),
		signal: AbortSignal.timeout(5000),
	});
	return r.status;
}

t.test("three kv-server processes over libp2p with fsync: a killed leader loses no acknowledged write", async (t) => {
	const dir = tempDir("kv-server-");
	t.teardown(dir.remove);
	const c = await KvCluster.start(dir.path, 3);
	t.teardown(() => c.stop());
	const leader = await c.leader();
	const acked: string[] = [];
	for (let i = 0; i < 50; i++) if ((await put(leader.httpPort, `k${i}`, `v${i}`)) === 200) acked.push(`k${i}`);
	t.equal(acked.length, 50, "all writes to the leader were acknowledged");
	const follower = c.members.find((m) => m !== leader)!;
	t.equal(await put(follower.httpPort, "x", "y"), 503, "a follower refuses writes and names the leader");
	await c.kill(leader);
	const next = await c.leader();
	t.not(next.id, leader.id, "a new leader was elected");
	for (const k of acked) {
		const r = await fetch(`http://127.0.0.1:${next.httpPort}/v3/kv/range`, {
			method: "POST",
			body: JSON.stringify({ key: b64(k) }),
		});
		const j = (await r.json()) as { kvs: Array<{ value: string }> };
		if (j.kvs[0]?.value !== b64(`v${k.slice(1)}`)) t.fail(`${k} lost`);
	}
	t.pass("every acknowledged write is readable from the new leader");
	// The old leader comes back from its disk and catches up.
	await c.spawn(leader);
	t.equal(await put(next.httpPort, "after", "restart"), 200);
	const st = await c.status(leader);
	t.ok(st, "the restarted member answers");
	await waitFor("the restarted member applied the write made after its restart", async () => {
		return (await localGet(leader.httpPort, "after")) === b64("restart");
	});
	for (const k of ["k0", "k25", "k49", "after"]) {
		t.equal(await localGet(leader.httpPort, k), await localGet(next.httpPort, k), `${k} equals the leader's`);
	}
});

/** A serializable (local, possibly stale) read, as etcd's `serializable: true`. */
async function localGet(port: number, key: string): Promise<string | undefined> {
	const r = await fetch(`http://127.0.0.1:${port}/v3/kv/range`, {
		method: "POST",
		body: JSON.stringify({ key: b64(key), serializable: true }),
		signal: AbortSignal.timeout(5000),
	});
	const j = (await r.json()) as { kvs?: Array<{ value: string }> };
	return j.kvs?.[0]?.value;
}
