// Power cuts, which the SIGKILL crash test cannot show (the page cache survives a killed process):
// the file stores run on a page-cache double that loses, reorders and tears what was not synced.
// Each failure prints its seed; replay one with runPowerCuts(seed) from ./power-cut.ts.
import t from "tap";
import { FileStableStore, writeFileAtomic } from "../../../consensus/index.ts";
import { Rng } from "../sim/rng.ts";
import { PageCacheIO, PowerCut } from "./page-cache.ts";
import { runPowerCuts } from "./power-cut.ts";

const SEEDS = Number(process.env.POWER_CUT_SEEDS ?? 1000);

t.test(`${SEEDS} seeded runs: power cut at random calls loses nothing acknowledged`, async (t) => {
	let cuts = 0;
	let acked = 0;
	const failed: string[] = [];
	for (let seed = 1; seed <= SEEDS; seed++) {
		const r = await runPowerCuts(seed);
		cuts += r.cuts;
		acked += r.acked;
		if (r.failure) failed.push(`seed ${seed}: ${r.failure.kind}: ${r.failure.message}`);
	}
	t.same(failed.slice(0, 5), [], `${failed.length} failing seeds`);
	t.ok(cuts >= SEEDS * 3 && acked > SEEDS * 10, `${cuts} power cuts, ${acked} acknowledged operations`);
});

// One seed per durability bug the double found; each failed before its fix (see the commits).
const regressions: Array<[number, string]> = [
	[5, "a log restarted below its old floor (after a snapshot install) is kept"],
	[60, "segments below the floor whose unlink a power cut undid do not break recovery"],
	[112, "a conflict cut across segments leaves a prefix of the log, never a gap"],
	[30, "a reaped snapshot never stays listed without its state"],
	[38, "a new segment's magic is durable before its first batch"],
	[42, "a torn magic padded with zeros is a torn creation"],
];
for (const [seed, what] of regressions) {
	t.test(`seed ${seed}: ${what}`, async (t) => {
		const r = await runPowerCuts(seed);
		t.equal(r.failure, undefined, r.failure ? `seed ${seed}: ${r.failure.message}` : `seed ${seed} passes`);
	});
}

// The checker must be able to fail: the same runs on a disk that never syncs, and on one where a
// directory fsync does not make renames durable, lose acknowledged state and it says so.
for (const [name, options, want] of [
	["fsync and fdatasync are no-ops", { noSync: true }, /log|stable|snapshot/],
	["renames without a durable directory fsync", { volatileRenames: true }, /stable \[/],
] as const) {
	t.test(`negative control: ${name} loses data and the checker sees it`, async (t) => {
		const losses: string[] = [];
		for (let seed = 1; seed <= 60; seed++) {
			const r = await runPowerCuts(seed, options);
			if (r.failure?.kind === "loss") losses.push(r.failure.message);
		}
		t.ok(losses.length >= 5, `${losses.length} of 60 seeds lost acknowledged state`);
		t.ok(
			losses.some((m) => want.test(m)),
			`among them: ${losses.find((m) => want.test(m))?.slice(0, 160)}`,
		);
	});
}

t.test("writeFileAtomic: tmp, write, fsync, close, rename, directory fsync", async (t) => {
	const io = new PageCacheIO();
	writeFileAtomic("/f", Buffer.from("x"), io);
	t.same(
		io.log.map((c) => `${c.call} ${c.path}`),
		["open(w) /f.tmp", "write /f.tmp", "fsync /f.tmp", "close /f.tmp", "rename /f.tmp -> /f", "fsyncDir /"],
	);
});

t.test("writeFileAtomic under power cuts: old or new content, and new once it returned", async (t) => {
	const content = (io: PageCacheIO) => (io.exists("/d/f") ? io.readFile("/d/f").toString() : "missing");
	const run = (options: { volatileRenames?: boolean }) => {
		const seen = new Set<string>();
		const bad: string[] = [];
		for (let cutAt = 1; cutAt <= 8; cutAt++) {
			for (let seed = 1; seed <= 30; seed++) {
				const io = new PageCacheIO(options);
				io.mkdir("/d");
				io.fsyncDir("/");
				writeFileAtomic("/d/f", Buffer.from("old"), io);
				io.cutAt = io.calls + cutAt;
				let returned = false;
				try {
					writeFileAtomic("/d/f", Buffer.from("new content"), io);
					returned = true;
					io.readFile("/d/f"); // the power goes off right after
				} catch (err) {
					if (!(err instanceof PowerCut)) throw err;
				}
				const after = content(io.crash(new Rng(seed)));
				seen.add(after);
				if (!(after === "new content" || (!returned && after === "old")))
					bad.push(`cut at call ${cutAt}, seed ${seed}: ${after}${returned ? " after it returned" : ""}`);
			}
		}
		return { seen, bad };
	};
	const ok = run({});
	t.same(ok.bad, [], "never torn, never lost once written");
	t.same([...ok.seen].sort(), ["new content", "old"], "both outcomes happen (the cut points cover the rename)");
	const control = run({ volatileRenames: true });
	t.ok(
		control.bad.some((b) => b.includes("after it returned")),
		`without a durable rename it is lost: ${control.bad[0]}`,
	);
});

t.test("new store directories survive a power cut (their parents are fsynced)", async (t) => {
	for (let seed = 1; seed <= 20; seed++) {
		const io = new PageCacheIO();
		const s = await FileStableStore.open("/a/b/c", { io });
		await s.setUint64("CurrentTerm", 7);
		const after = await FileStableStore.open("/a/b/c", { io: io.crash(new Rng(seed)) });
		t.equal(await after.getUint64("CurrentTerm"), 7, `seed ${seed}: the term survived`);
	}
});
