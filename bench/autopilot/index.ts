// bench/autopilot: SIGKILL a Raft voter of a real 4-node lab cluster (3 voters chosen by autopilot,
// 1 standby) and time (a) until a replacement voter is promoted and caught up (node ls shows 3
// voters without the victim) and (b) until the first write is acknowledged; 10 kills, alternately
// the leader and a follower, the victim started again between rounds. Swarm and k3s never do (a):
// a person runs `node promote`; so there is no same-run peer and no ratio.
import { setTimeout as sleep } from "node:timers/promises";
import type { NodeView } from "../../agent/api/types.ts";
import {
	cliPath,
	createLab,
	destroyRecord,
	execInNode,
	type LabRecord,
	labRoot,
	startNode,
	stopNode,
} from "../../cli/lab/index.ts";
import { uniqueName } from "../../tests/helpers/index.ts";

const KILLS = Number(process.env.AUTOPILOT_KILLS ?? 10);
const log = (m: string) => process.stderr.write(`[autopilot] ${m}\n`);
const VOTING = ["Leader", "Reachable"];

let rec: LabRecord;
const down = new Set<string>();

async function tsswarm(args: string[]): Promise<string | undefined> {
	for (const n of rec.nodes) {
		if (down.has(n.name)) continue;
		const r = await execInNode(rec, n.name, [cliPath, ...args]);
		if (r.code === 0) return r.stdout;
	}
	return undefined;
}

async function ls(): Promise<NodeView[]> {
	const out = await tsswarm(["node", "ls", "--format", "json"]);
	return out ? (JSON.parse(out) as NodeView[]) : [];
}

const voters = (v: NodeView[]) => v.filter((n) => VOTING.includes(n.managerStatus)).map((n) => n.hostname);

async function until<T>(what: string, f: () => Promise<T | undefined>, ms: number, every = 250): Promise<T> {
	const deadline = Date.now() + ms;
	for (;;) {
		const v = await f();
		if (v !== undefined) return v;
		if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
		await sleep(every);
	}
}

/** 3 voters, nobody catching up or unreachable, every node alive. */
const steady = () =>
	until(
		"3 voters and a leader, nobody catching up or unreachable",
		async () => {
			const v = await ls();
			const ok =
				voters(v).length === 3 &&
				// A node's view during an election has 3 voters and no leader yet: not steady.
				v.some((n) => n.managerStatus === "Leader") &&
				v.every((n) => n.managerStatus !== "Catching up" && n.managerStatus !== "Unreachable") &&
				v.filter((n) => n.state === "alive").length === rec.nodes.length;
			return ok ? v : undefined;
		},
		180_000,
		500,
	);

const pct = (xs: number[], p: number) => {
	const s = [...xs].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

async function main(): Promise<void> {
	const root = labRoot();
	rec = await createLab({ name: uniqueName("ap"), nodes: 4, cluster: true, managers: 1, root });
	let cleaned = false;
	const cleanup = async () => {
		if (cleaned) return;
		cleaned = true;
		await destroyRecord(root, rec, 3000).catch(() => {});
	};
	process.once("SIGTERM", () => void cleanup().then(() => process.exit(143)));
	process.once("SIGINT", () => void cleanup().then(() => process.exit(130)));
	const voterMs: number[] = [];
	const writeMs: number[] = [];
	try {
		for (let k = 0; k < KILLS; k++) {
			const before = await steady();
			const leader = before.find((n) => n.managerStatus === "Leader")!.hostname;
			const victim = k % 2 === 0 ? leader : voters(before).find((n) => n !== leader)!;
			const t0 = Date.now();
			await stopNode(rec.name, victim, { root, kill: true });
			down.add(victim);
			let wrote: number | undefined;
			// The write and the promotion are watched at once: each is timed from the kill.
			const writing = (async () => {
				while (wrote === undefined) {
					if ((await tsswarm(["network", "create", `w${k}-${Date.now()}`])) !== undefined) wrote = Date.now() - t0;
					else await sleep(100);
					if (Date.now() - t0 > 120_000) throw new Error("no write acknowledged within 120 s");
				}
			})();
			await until(
				"a replacement voter",
				async () => {
					const v = voters(await ls());
					return v.length === 3 && !v.includes(victim) ? true : undefined;
				},
				180_000,
			);
			const promoted = Date.now() - t0;
			await writing;
			voterMs.push(promoted);
			writeMs.push(wrote!);
			log(
				`kill ${k + 1}/${KILLS} (${k % 2 === 0 ? "leader" : "follower"} ${victim}): voter ${promoted} ms, write ${wrote} ms`,
			);
			await startNode(rec.name, victim, { root });
			down.delete(victim);
		}
	} finally {
		await cleanup();
	}
	const r = (xs: number[]) => ({ median: pct(xs, 50), p99: pct(xs, 99) });
	const ours = {
		kills: KILLS,
		replacement_voter_ms: r(voterMs),
		first_write_ms: r(writeMs),
		leader_kills_first_write_ms: r(writeMs.filter((_, i) => i % 2 === 0)),
		follower_kills_first_write_ms: KILLS > 1 ? r(writeMs.filter((_, i) => i % 2 === 1)) : null,
		settings: "defaults: 10 s stabilization, 3 s heartbeat deadline, 5 min dead threshold",
	};
	process.stdout.write(
		`${JSON.stringify({
			bench: "autopilot",
			peer_name: "Docker Swarm and k3s: no automatic replacement (a person promotes a node); no same-run peer",
			ours,
			peer: {},
			ratios: {},
		})}\n`,
	);
}

await main();
