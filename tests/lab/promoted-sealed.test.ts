// A node promoted to manager gets the cluster secret before its replica starts, so its Raft log and
// snapshots are sealed from their first entry (encryption at rest). It used to start its replica
// first and fetch the keys after, writing the cluster state in the clear until its next restart.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { dataCipher, readKeyFile } from "../../agent/keyring/index.ts";
import { FileLogStore } from "../../consensus/index.ts";
import { filesUnder, uniqueName, waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import { cli } from "../helpers/services.ts";

t.test("a promoted manager's Raft files are sealed from the first entry", async (t) => {
	const lab = await withLab(t, { nodes: 2, cluster: true, managers: 1 });
	const n2 = lab.nodes.find((n) => n.name === "n2")!;
	const role = () => JSON.parse(readFileSync(join(n2.dir, "cluster", "state.json"), "utf8")).role as string;
	t.equal(role(), "worker", "control: n2 joined as a worker (2 nodes: autopilot keeps 1 voter)");
	const before = uniqueName("sealed-before");
	await cli(lab, "n1", ["network", "create", "-d", "overlay", before]);

	const logFrom = readFileSync(join(n2.dir, "agent.log")).length;
	await cli(lab, "n1", ["node", "promote", "n2"]);
	await waitFor("n2 to run a manager", async () => role() === "manager", { timeoutMs: 60_000, intervalMs: 250 });
	const after = uniqueName("sealed-after");
	await cli(lab, "n1", ["network", "create", "-d", "overlay", after]);
	const index = (on: string) =>
		cli(lab, on, ["info", "--format", "json"]).then((s) => (JSON.parse(s).raft?.index as number | undefined) ?? 0);
	const target = await index("n1");
	await waitFor(`n2's replica at ${target}`, async () => (await index("n2")) >= target, { timeoutMs: 60_000 });
	t.match(
		readFileSync(join(n2.dir, "agent.log")).subarray(logFrom).toString(),
		/cluster secret received from another manager before the replica started/,
		"n2 had the cluster secret before its replica started",
	);
	t.equal(await lab.stop("n2"), true, "n2 stopped (its files are all written)");

	const raftFiles = filesUnder(join(n2.dir, "raft"));
	t.ok(
		raftFiles.some((f) => readFileSync(f).includes(Buffer.from("RAFTLOG\x02", "latin1"))),
		"control: the search reads n2's Raft log segments",
	);
	for (const marker of [before, after]) {
		const found = raftFiles.filter((f) => readFileSync(f).includes(Buffer.from(marker)));
		t.same(found, [], `no Raft file of n2 holds the network name ${marker} in the clear`);
	}
	// Positive control: the log opens with n2's own data key, and holds the later network.
	const { dataKey } = readKeyFile(join(n2.dir, "cluster", "keys"));
	const log = await FileLogStore.open({ dir: join(n2.dir, "raft", "log"), cipher: dataCipher(dataKey) });
	let opened = false;
	for (let i = await log.firstIndex(); i <= (await log.lastIndex()); i++) {
		const e = await log.getLog(i);
		if (e && Buffer.from(e.data).includes(Buffer.from(after))) opened = true;
	}
	await log.close();
	t.ok(opened, `opened with n2's data key, its log holds ${after}`);
});
