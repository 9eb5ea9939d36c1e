// The seeded power-cut workload and its checker (power-cut.test.ts runs it): random appends,
// overwrites, compactions, suffix cuts, resets, term/vote writes and snapshots on the three file
// stores over a PageCacheIO, the power cut at a random call, the stores reopened on what survived.
import { FileLogStore, FileSnapshotStore, FileStableStore, type RecordCipher } from "../../../consensus/index.ts";
import { Rng } from "../sim/rng.ts";
import { PageCacheIO, type PageCacheOptions, PowerCut } from "./page-cache.ts";

const LOG = "/var/lib/raft/log";
const STABLE = "/var/lib/raft";
const SNAPS = "/var/lib/raft/snapshots";
const KEYS = ["CurrentTerm", "LastVoteTerm", "LastVoteCand"];
const RETAIN = 2;

interface E {
	index: number;
	term: number;
	tag: string;
}

/** The operation that was running when the power went off: what the stores may show for it. */
type InFlight =
	| { kind: "store"; start: number; after: E[] }
	| { kind: "compact"; upto: number }
	| { kind: "suffix"; from: number }
	| { kind: "reset" }
	| { kind: "stable"; after: Map<string, string>; atomic: boolean }
	| { kind: "snapshot"; id?: string }
	| { kind: "seal" };

export interface RunResult {
	/** Why the run failed: `loss` = the checker found acknowledged state lost or changed. */
	failure?: { kind: "loss" | "error"; message: string };
	cuts: number;
	acked: number;
}

const show = (es: E[]) =>
	es.length === 0
		? "[]"
		: `[${es[0]!.index}..${es.at(-1)!.index}] (${es.map((e) => `${e.index}/${e.term}`).join(" ")})`;
const same = (a: E, b: E | undefined) => b !== undefined && a.index === b.index && a.term === b.term && a.tag === b.tag;
/** R is X's first R.length entries, and at least `min` of them. */
const prefixOf = (r: E[], x: E[], min: number) =>
	r.length >= min && r.length <= x.length && r.every((e, k) => same(e, x[k]));
const equal = (r: E[], x: E[]) => r.length === x.length && prefixOf(r, x, x.length);

function logProblem(r: E[], a: E[], op: InFlight | undefined): string | undefined {
	let ok: boolean;
	switch (op?.kind) {
		case "store": {
			const keep = a.filter((e) => e.index < op.start).length;
			ok = prefixOf(r, a, keep) || prefixOf(r, op.after, keep);
			break;
		}
		case "compact": {
			const left = a.filter((e) => e.index > op.upto).length;
			ok = r.length >= left && r.length <= a.length && equal(r, a.slice(a.length - r.length));
			break;
		}
		case "suffix":
			ok = prefixOf(r, a, a.filter((e) => e.index < op.from).length);
			break;
		case "reset":
			ok = r.length === 0 || equal(r, a);
			break;
		default:
			ok = equal(r, a);
	}
	return ok ? undefined : `log ${show(r)} after recovery, acknowledged ${show(a)}, in flight ${JSON.stringify(op)}`;
}

const mapText = (m: Map<string, string>) => JSON.stringify([...m]);

/** A plain record's payload holds the msgpack key "data" (a sealed one's is "sealed"). */
const PLAIN_KEY = Buffer.from("\xa4data", "latin1");

/**
 * `cipher`: the same runs with the log and snapshots encrypted at rest. `sealLater`: the stores
 * start plain and are sealed with `sealLater.cipher` at a random step (seal()); every open after
 * that gives them the cipher and (unless `atOpen` is false: the checker's negative control) seals
 * again, as ClusterStore.open does, and from then on no plain record or snapshot may be left.
 */
export async function runPowerCuts(
	seed: number,
	options: PageCacheOptions = {},
	cycles = 3,
	cipher?: RecordCipher,
	sealLater?: { cipher: RecordCipher; atOpen?: boolean },
): Promise<RunResult> {
	let sealing = false;
	const enc = () => (sealing ? { cipher: sealLater!.cipher } : cipher ? { cipher } : {});
	const rng = new Rng(seed);
	let io = new PageCacheIO(options);
	let log: E[] = [];
	let stable = new Map<string, string>();
	let snaps: string[] = []; // acknowledged, oldest first
	const snapData = new Map<string, { index: number; data: Buffer }>();
	let inflight: InFlight | undefined;
	let term = 1;
	let nextStart = 1;
	let snapIndex = 0;
	let tags = 0;
	let acked = 0;
	let cuts = 0;

	const check = async (ls: FileLogStore, ss: FileStableStore, sn: FileSnapshotStore): Promise<string | undefined> => {
		const first = await ls.firstIndex();
		const last = await ls.lastIndex();
		const r = (await ls.getLogs(first, last)).map((e) => ({
			index: e.index,
			term: e.term,
			tag: Buffer.from(e.data).toString(),
		}));
		if (r.length !== (last === 0 ? 0 : last - first + 1)) return `log ${first}..${last} holds ${r.length} entries`;
		const lp = logProblem(r, log, inflight);
		if (lp) return lp;
		const got = new Map<string, string>();
		for (const k of KEYS) {
			const v = await ss.get(k);
			if (v) got.set(k, Buffer.from(v).toString());
		}
		// One set() per key is atomic per key; setMany() is atomic as a whole.
		const op = inflight?.kind === "stable" ? inflight : undefined;
		const okStable =
			mapText(got) === mapText(stable) ||
			(op !== undefined && mapText(got) === mapText(op.after)) ||
			(op !== undefined &&
				!op.atomic &&
				KEYS.every((k) => got.get(k) === stable.get(k) || got.get(k) === op.after.get(k)));
		if (!okStable) return `stable ${mapText(got)} after recovery, acknowledged ${mapText(stable)}`;
		const listed = (await sn.list()).map((m) => m.id);
		if (sealing) {
			for (const n of io.readdir(LOG))
				if (io.readFile(`${LOG}/${n}`).includes(PLAIN_KEY)) return `${n} holds a plain record after seal`;
			for (const id of listed)
				if (!JSON.parse(io.readFile(`${SNAPS}/${id}/meta.json`).toString()).encrypted)
					return `snapshot ${id} is plain after seal`;
		}
		for (const id of listed) {
			const want = snapData.get(id);
			if (!want) return `snapshot ${id} listed but never written`;
			let data: Uint8Array;
			try {
				const got = await sn.open(id);
				if (got.meta.index !== want.index) return `snapshot ${id} has index ${got.meta.index}`;
				data = got.data;
			} catch (err) {
				if (err instanceof PowerCut) throw err;
				return `snapshot ${id} listed but unreadable: ${(err as Error).message}`;
			}
			if (!Buffer.from(data).equals(want.data)) return `snapshot ${id} listed with other data`;
		}
		const complete = [...snaps];
		if (inflight?.kind === "snapshot" && inflight.id && listed.includes(inflight.id)) complete.push(inflight.id);
		for (const id of complete.slice(-RETAIN))
			if (!listed.includes(id)) return `snapshot ${id} was reported complete and is gone (listed: ${listed})`;
		log = r;
		stable = got;
		snaps = listed.reverse();
		inflight = undefined;
		nextStart = log.length > 0 ? log.at(-1)!.index + 1 : nextStart;
		return undefined;
	};

	const entries = (start: number, n: number, t: number): E[] =>
		Array.from({ length: n }, (_, k) => ({ index: start + k, term: t, tag: `${seed}:${++tags}` }));

	const step = async (ls: FileLogStore, ss: FileStableStore, sn: FileSnapshotStore) => {
		if (sealLater && !sealing && rng.chance(0.1)) {
			inflight = { kind: "seal" };
			sealing = true;
			await ls.seal(sealLater.cipher);
			sn.seal(sealLater.cipher);
			inflight = undefined;
			acked++;
			return;
		}
		const p = rng.next();
		const first = log[0]?.index;
		const last = log.at(-1)?.index;
		if (p < 0.45 || first === undefined || last === undefined) {
			const start = last === undefined ? nextStart : last + 1;
			const batch = entries(start, rng.int(1, 6), term);
			inflight = { kind: "store", start, after: [...log, ...batch] };
			await ls.storeLogs(batch.map((e) => ({ ...e, type: "command" as const, data: Buffer.from(e.tag) })));
			log = inflight.after;
		} else if (p < 0.53) {
			// A follower overwriting a conflicting suffix with a newer leader's entries.
			const start = rng.int(first + 1, last + 1);
			term++;
			const batch = entries(start, rng.int(1, 4), term);
			inflight = { kind: "store", start, after: [...log.filter((e) => e.index < start), ...batch] };
			await ls.storeLogs(batch.map((e) => ({ ...e, type: "command" as const, data: Buffer.from(e.tag) })));
			log = inflight.after;
		} else if (p < 0.63 && last > first) {
			const upto = rng.int(first, last - 1);
			inflight = { kind: "compact", upto };
			await ls.deleteRange(first, upto);
			log = log.filter((e) => e.index > upto);
		} else if (p < 0.68 && last > first) {
			const from = rng.int(first + 1, last);
			inflight = { kind: "suffix", from };
			await ls.deleteRange(from, last);
			log = log.filter((e) => e.index < from);
		} else if (p < 0.71) {
			// A snapshot installed from the leader: the whole log goes, the next entry may be below it.
			inflight = { kind: "reset" };
			await ls.deleteRange(first, last);
			log = [];
			nextStart = rng.int(1, last + 3);
		} else if (p < 0.88) {
			const after = new Map(stable);
			term += rng.int(0, 1);
			after.set("CurrentTerm", String(term));
			if (rng.chance(0.5)) {
				after.set("LastVoteTerm", String(term));
				after.set("LastVoteCand", `node-${rng.int(1, 5)}`);
			}
			const atomic = rng.chance(0.5);
			inflight = { kind: "stable", after, atomic };
			if (atomic) await ss.setMany(Object.fromEntries([...after].map(([k, v]) => [k, Buffer.from(v)])));
			else for (const [k, v] of after) if (stable.get(k) !== v) await ss.set(k, Buffer.from(v));
			stable = after;
		} else {
			inflight = { kind: "snapshot" };
			const index = ++snapIndex;
			const data = Buffer.from(Array.from({ length: rng.int(0, 600) }, () => rng.int(0, 255)));
			const sink = await sn.create({
				index,
				term,
				configuration: { servers: [] },
				configurationIndex: 0,
			});
			inflight.id = sink.id;
			snapData.set(sink.id, { index, data });
			const cut = rng.int(0, data.length);
			await sink.write(data.subarray(0, cut));
			await sink.write(data.subarray(cut));
			if (rng.chance(0.1)) {
				await sink.cancel();
			} else {
				await sink.close();
				snaps.push(sink.id);
			}
		}
		inflight = undefined;
		acked++;
	};

	const open = async () => {
		const stores = [
			await FileLogStore.open({ dir: LOG, segmentBytes: 200, io, ...enc() }),
			await FileStableStore.open(STABLE, { io }),
			new FileSnapshotStore(SNAPS, RETAIN, { io, ...enc() }),
		] as const;
		// What a power cut kept plain of a seal in flight is sealed now.
		if (sealing && sealLater && sealLater.atOpen !== false) {
			await stores[0].seal(sealLater.cipher);
			stores[2].seal(sealLater.cipher);
		}
		return stores;
	};

	for (let cycle = 0; cycle <= cycles; cycle++) {
		const lastCycle = cycle === cycles;
		if (!lastCycle) io.cutAt = io.calls + rng.int(1, 150);
		try {
			const [ls, ss, sn] = await open();
			const problem = await check(ls, ss, sn);
			if (problem) return { failure: { kind: "loss", message: `after cut ${cuts}: ${problem}` }, cuts, acked };
			if (lastCycle) break;
			for (;;) await step(ls, ss, sn);
		} catch (err) {
			if (!(err instanceof PowerCut)) {
				return { failure: { kind: "error", message: `after cut ${cuts}: ${(err as Error).stack}` }, cuts, acked };
			}
		}
		io = io.crash(rng);
		cuts++;
	}
	return { cuts, acked };
}
