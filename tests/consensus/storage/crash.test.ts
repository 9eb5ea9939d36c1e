import { spawn } from "node:child_process";
import t from "tap";
import { FileLogStore } from "../../../consensus/index.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";
import { Rng } from "../sim/rng.ts";

const storeModule = new URL("../../../consensus/index.ts", import.meta.url).pathname;

// The writer appends batches forever, printing the last index of each batch once storeLogs (and
// its fdatasync) resolved: from then on those entries are acknowledged and must survive anything.
const writer = `
import { FileLogStore } from ${JSON.stringify(storeModule)};
const [dir, seed] = process.argv.slice(1);
let s = Number(seed) >>> 0;
const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296);
const store = await FileLogStore.open({ dir, segmentBytes: 256 * 1024 });
let next = (await store.lastIndex()) + 1;
process.stdout.write("start " + (next - 1) + "\\n");
for (;;) {
	const n = 1 + Math.floor(rnd() * 40);
	const batch = [];
	for (let k = 0; k < n; k++, next++) {
		const size = Math.floor(rnd() * 3000);
		batch.push({ index: next, term: 1, type: "command", data: Buffer.alloc(size, next % 251) });
	}
	await store.storeLogs(batch);
	process.stdout.write("acked " + (next - 1) + "\\n");
}
`;

t.test("SIGKILL at random points loses no acknowledged entry and leaves nothing half-applied", async (t) => {
	const dir = tempDir("raft-crash-");
	t.teardown(dir.remove);
	const rng = new Rng(20261124);
	let acked = 0;
	let tornSeen = 0;
	for (let round = 0; round < 8; round++) {
		const child = spawn(process.execPath, ["--input-type=module", "-e", writer, dir.path, String(round + 1)], {
			stdio: ["ignore", "pipe", "inherit"],
		});
		t.teardown(() => {
			if (child.exitCode === null) child.kill("SIGKILL");
		});
		let out = "";
		child.stdout.on("data", (d) => {
			out += d;
		});
		const lastAcked = () => {
			const m = [...out.matchAll(/acked (\d+)/g)].at(-1);
			return m ? Number(m[1]) : 0;
		};
		const target = rng.int(3, 60);
		await waitFor(`round ${round}: ${target} batches acknowledged`, () => out.split("acked").length > target, {
			timeoutMs: 30_000,
		});
		child.kill("SIGKILL");
		await new Promise((r) => child.once("exit", r));
		acked = Math.max(acked, lastAcked());
		const store = await FileLogStore.open({ dir: dir.path, segmentBytes: 256 * 1024 });
		if (store.recovery.tornBytes > 0) tornSeen++;
		const last = await store.lastIndex();
		t.ok(last >= acked, `round ${round}: last ${last} >= acknowledged ${acked}`);
		// Every entry present is whole and contiguous; nothing half-written survives.
		const all = await store.getLogs(1, last);
		t.equal(all.length, last, `round ${round}: entries 1..${last} all present`);
		const broken = all.filter((e, k) => e.index !== k + 1 || e.data.some((b) => b !== e.index % 251));
		t.equal(broken.length, 0, `round ${round}: every entry intact`);
		await store.close();
		acked = last; // what the next round's writer continues from (now durable)
	}
	t.ok(acked > 100, `appended ${acked} entries across 8 crashes (torn tails cut in ${tornSeen} rounds)`);
});
