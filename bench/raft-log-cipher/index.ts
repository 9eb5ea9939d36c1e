// bench/raft-log-cipher: what encryption at rest costs the file log. Appends of one entry (a
// store-sized payload) per storeLogs, with fdatasync and without (the CPU cost alone), bytes on disk
// per entry, and the time to reopen (recover) the log; ours = with the AES-256-GCM cipher the agent
// uses, peer = "the same FileLogStore without a cipher", run here on the same entries.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { newKey, open, seal } from "../../agent/keyring/index.ts";
import { FileLogStore, type LogEntry, type RecordCipher } from "../../consensus/index.ts";

const { values } = parseArgs({
	options: {
		entries: { type: "string", default: "5000" },
		synced: { type: "string", default: "300" },
		bytes: { type: "string", default: "300" },
	},
});
const N = Number(values.entries);
const SYNCED = Number(values.synced);
const BYTES = Number(values.bytes);
const log = (m: string) => process.stderr.write(`[raft-log-cipher] ${m}\n`);

const key = newKey();
const cipher: RecordCipher = { seal: (p, aad) => seal(key, p, aad), open: (s, aad) => open(key, s, aad) };
const payload = Buffer.alloc(BYTES, 0x61);
const entries: LogEntry[] = Array.from({ length: N }, (_, i) => ({
	index: i + 1,
	term: 3,
	type: "command",
	data: payload,
}));

async function run(withCipher: boolean, n: number, noSync: boolean) {
	const dir = mkdtempSync(join(tmpdir(), "bench-log-cipher-"));
	try {
		const o = { dir, noSync, ...(withCipher ? { cipher } : {}) };
		const s = await FileLogStore.open(o);
		const t0 = performance.now();
		for (let i = 0; i < n; i++) await s.storeLogs([entries[i]!]);
		const appendMs = performance.now() - t0;
		const bytesPerEntry = (s.diskBytes() - 8) / n;
		await s.close();
		const t1 = performance.now();
		const r = await FileLogStore.open(o);
		const reopenMs = performance.now() - t1;
		if ((await r.lastIndex()) !== n) throw new Error("reopen lost entries");
		await r.close();
		return { opsPerSec: Math.round((n / appendMs) * 1000), bytesPerEntry: Math.round(bytesPerEntry), reopenMs };
	} finally {
		rmSync(dir, { recursive: true, force: true });
	}
}

async function side(withCipher: boolean) {
	const cpu = await run(withCipher, N, true);
	const synced = await run(withCipher, SYNCED, false);
	return {
		cpuOpsPerSec: cpu.opsPerSec,
		syncedOpsPerSec: synced.opsPerSec,
		bytesPerEntry: cpu.bytesPerEntry,
		reopenMsPer1000: Math.round((cpu.reopenMs / N) * 1000 * 100) / 100,
	};
}

async function main() {
	await side(true); // warm up both paths (JIT, page cache)
	await side(false);
	const ours = await side(true);
	const peer = await side(false);
	log(`cipher:    ${JSON.stringify(ours)}`);
	log(`no cipher: ${JSON.stringify(peer)}`);
	const r = (k: keyof typeof ours) => Math.round((ours[k] / peer[k]) * 1000) / 1000;
	process.stdout.write(
		`${JSON.stringify({
			bench: "raft-log-cipher",
			ours: { ...ours, payloadBytes: BYTES },
			peer: { name: "FileLogStore without a cipher", ...peer },
			ratios: {
				cpuOpsPerSec: r("cpuOpsPerSec"),
				syncedOpsPerSec: r("syncedOpsPerSec"),
				bytesPerEntry: r("bytesPerEntry"),
				reopenMsPer1000: r("reopenMsPer1000"),
			},
		})}\n`,
	);
}

await main();
