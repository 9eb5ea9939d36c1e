// bench/membership-vs-serf: our SWIM/Lifeguard membership vs serf (Debian's serf agent, default
// LAN profile) on a 10-node lab, one system at a time: (a) time until all 10 see each other after
// start, (b) time from SIGKILL of a node until every other marks it failed (median, p99 over
// --kills), (c) false failures during a soak with 10% random loss of ALL packets between nodes
// (UDP and TCP: an nftables `numgen random` drop on every node's input from the underlay) and
// one node's CPU saturated, (d) idle bytes/s per node over 60 s (longer than serf's 30 s
// push-pull); plus the 1,000-member simulation of ours (convergence, bytes/s per node, then loss,
// slow nodes and a partition). Options: --kills N (10), --soak-seconds S (300), --sim-members N (1000).
//
// "Saturated" here: n5's agent runs in its own cpu cgroup whose quota is one CPU
// (cpu.cfs_quota_us = cpu.cfs_period_us = 100 ms), together with two busy loops (one per core of
// this 2-core machine). The loops use up the cgroup's whole budget in every period, so the agent
// waits for CPU (throttled up to ~50 ms per 100 ms period, then shares what is left 1:2) every
// time it wakes — the same for serf.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLab, destroyRecord, type LabRecord, labRoot, netnsArgv, run } from "../../cli/lab/index.ts";
import { ensurePeers } from "../../scripts/peers.ts";
import { converged, scenario, simCluster } from "../../tests/agent/membership/sim.ts";
import { uniqueName } from "../../tests/helpers/index.ts";

const { values } = parseArgs({
	options: {
		kills: { type: "string", default: "10" },
		"soak-seconds": { type: "string", default: "300" },
		"sim-members": { type: "string", default: "1000" },
	},
});
const KILLS = Number(values.kills);
const SOAK = Number(values["soak-seconds"]);
const SIM = Number(values["sim-members"]);
const log = (m: string) => process.stderr.write(`[membership-vs-serf] ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) =>
	[...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const daemon = new URL("../../agent/membership/daemon.ts", import.meta.url).pathname;
const KEY = randomBytes(32).toString("hex");

interface Ev {
	t: number;
	ev: string;
	id: string; // the member the event is about
	at: string; // the node that saw it
}

interface System {
	name: string;
	port: number;
	start(node: string, addr: string, seed?: string): ChildProcess;
	events: Ev[];
}

function spawnIn(rec: LabRecord, node: string, argv: string[], onLine: (l: string) => void): ChildProcess {
	const [cmd, ...args] = netnsArgv(rec, node, argv);
	const p = spawn(cmd!, args, { stdio: ["ignore", "pipe", "ignore"] });
	let buf = "";
	p.stdout!.on("data", (d: Buffer) => {
		buf += d;
		const lines = buf.split("\n");
		buf = lines.pop() ?? "";
		for (const l of lines) if (l.trim()) onLine(l);
	});
	return p;
}

function ours(rec: LabRecord): System {
	const events: Ev[] = [];
	return {
		name: "tsswarm",
		port: 7946,
		events,
		start(node, addr, seed) {
			return spawnIn(
				rec,
				node,
				[
					process.execPath,
					daemon,
					"--id",
					node,
					"--bind",
					`${addr}:7946`,
					"--key",
					KEY,
					"--join",
					seed ? `${seed}:7946` : "",
				],
				(l) => {
					const e = JSON.parse(l) as { t: number; ev: string; id: string };
					events.push({ t: e.t, ev: e.ev === "alive" ? "join" : e.ev, id: e.id, at: node });
				},
			);
		},
	};
}

function serf(rec: LabRecord): System {
	const events: Ev[] = [];
	return {
		name: "serf",
		port: 7947,
		events,
		start(node, addr, seed) {
			const file = join(rec.dir, `serf-${node}.events`);
			writeFileSync(file, "");
			// Each event line: "<ms> <event> <member name> <addr> ..." written by the handler.
			const handler = `member-join,member-failed,member-leave=/bin/sh -c 'while read name addr rest; do echo "$(date +%s%3N) $SERF_EVENT $name" >> ${file}; done'`;
			const args = [
				"serf",
				"agent",
				`-node=${node}`,
				`-bind=${addr}:7947`,
				"-rpc-addr=127.0.0.1:7373",
				"-log-level=err",
				`-event-handler=${handler}`,
			];
			// retry-join: a node started before the seed listens would otherwise give up (ours retries too).
			if (seed) args.push(`-retry-join=${seed}:7947`, "-retry-interval=1s");
			const p = spawnIn(rec, node, args, () => {});
			let seen = 0;
			const poll = setInterval(() => {
				const lines = readFileSync(file, "utf8").split("\n").filter(Boolean);
				for (const l of lines.slice(seen)) {
					const [t, ev, id] = l.split(" ");
					events.push({
						t: Number(t),
						ev: ev === "member-join" ? "join" : ev === "member-failed" ? "fail" : "leave",
						id: id!,
						at: node,
					});
				}
				seen = lines.length;
			}, 20);
			p.once("exit", () => clearInterval(poll));
			return p;
		},
	};
}

async function waitUntil(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
	const end = Date.now() + timeoutMs;
	while (!cond()) {
		if (Date.now() > end) throw new Error(`timed out: ${what}`);
		await sleep(20);
	}
}

const kill = (p: ChildProcess | undefined) =>
	new Promise<void>((r) => {
		if (!p || p.exitCode !== null || p.signalCode !== null) return r();
		p.once("exit", () => r());
		p.kill("SIGKILL");
	});

/** Members each node currently considers live, replayed from its events. */
function liveViews(sys: System, nodes: string[]): Map<string, Set<string>> {
	const views = new Map(nodes.map((n) => [n, new Set<string>([n])]));
	for (const e of [...sys.events].sort((a, b) => a.t - b.t)) {
		const v = views.get(e.at);
		if (!v || e.id === e.at) continue;
		if (e.ev === "join") v.add(e.id);
		if (e.ev === "fail" || e.ev === "leave") v.delete(e.id);
	}
	return views;
}

/** n's agent and two busy loops in a cpu cgroup with a one-CPU quota (see the header). */
function saturate(rec: LabRecord, node: string, agentPid: number): { stop(): Promise<void> } {
	const cg = `/sys/fs/cgroup/cpu/${uniqueName("mbhog")}`;
	const v1 = existsSync("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
	if (v1) {
		mkdirSync(cg);
		writeFileSync(`${cg}/cpu.cfs_period_us`, "100000");
		writeFileSync(`${cg}/cpu.cfs_quota_us`, "100000");
		writeFileSync(`${cg}/cgroup.procs`, String(agentPid));
	} else log("no cgroup v1 cpu controller: the busy loops only compete for the machine's CPUs");
	const loops = [0, 1].map(() => {
		const argv = netnsArgv(rec, node, ["sh", "-c", "while :; do :; done"]);
		const p = spawn(argv[0]!, argv.slice(1), { stdio: "ignore" });
		if (v1) writeFileSync(`${cg}/cgroup.procs`, String(p.pid));
		return p;
	});
	return {
		async stop() {
			await Promise.all(loops.map(kill));
			if (!v1) return;
			// Move the agent back to the root cgroup so ours can go.
			try {
				writeFileSync("/sys/fs/cgroup/cpu/cgroup.procs", String(agentPid));
			} catch {}
			for (let i = 0; i < 50; i++) {
				try {
					rmdirSync(cg);
					return;
				} catch {
					await sleep(100);
				}
			}
			log(`could not remove ${cg}`);
		},
	};
}

async function txBytes(rec: LabRecord, node: string): Promise<number> {
	const { stdout } = await run(netnsArgv(rec, node, ["cat", "/proc/net/dev"]));
	const line = stdout.split("\n").find((l) => l.trim().startsWith("eth0:"))!;
	return Number(line.split(":")[1]!.trim().split(/\s+/)[8]);
}

async function measure(rec: LabRecord, sys: System) {
	const nodes = rec.nodes.map((n) => n.name);
	const addr = (n: string) => rec.nodes.find((x) => x.name === n)!.address;
	const procs = new Map<string, ChildProcess>();
	const t0 = Date.now();
	for (const n of nodes) procs.set(n, sys.start(n, addr(n), n === "n1" ? undefined : addr("n1")));
	await waitUntil(
		`${sys.name}: all see all`,
		() => [...liveViews(sys, nodes).values()].every((v) => v.size === nodes.length),
		60_000,
	);
	const convergeMs = Date.now() - t0;
	log(`${sys.name}: 10 nodes converged ${convergeMs} ms after start`);

	await sleep(3000);
	const IDLE_S = 60;
	const b0 = await Promise.all(nodes.map((n) => txBytes(rec, n)));
	await sleep(IDLE_S * 1000);
	const b1 = await Promise.all(nodes.map((n) => txBytes(rec, n)));
	const idleBps = b1.reduce((s, b, i) => s + (b - b0[i]!), 0) / nodes.length / IDLE_S;
	log(`${sys.name}: idle ${Math.round(idleBps)} bytes/s per node`);

	const detections: number[] = [];
	for (let k = 0; k < KILLS; k++) {
		const victim = nodes[1 + (k % (nodes.length - 1))]!;
		const since = Date.now();
		await kill(procs.get(victim));
		const observers = nodes.filter((n) => n !== victim);
		await waitUntil(
			`${sys.name}: everyone marks ${victim} failed`,
			() =>
				observers.every((o) =>
					sys.events.some((e) => e.at === o && e.id === victim && e.ev === "fail" && e.t >= since),
				),
			60_000,
		);
		const last = Math.max(
			...observers.map(
				(o) => sys.events.find((e) => e.at === o && e.id === victim && e.ev === "fail" && e.t >= since)!.t,
			),
		);
		detections.push(last - since);
		// Bring it back and let everyone see it before the next kill.
		const back = Date.now();
		procs.set(victim, sys.start(victim, addr(victim), addr("n1")));
		await waitUntil(
			`${sys.name}: ${victim} back`,
			() =>
				observers.every((o) => sys.events.some((e) => e.at === o && e.id === victim && e.ev === "join" && e.t >= back)),
			60_000,
		);
		await sleep(1000);
	}
	log(`${sys.name}: detection median ${pct(detections, 50)} ms, p99 ${pct(detections, 99)} ms over ${KILLS} kills`);

	// Soak: 10% loss of every packet between nodes (UDP and TCP, both systems), n5's CPU saturated.
	for (const n of nodes) {
		await run(netnsArgv(rec, n, ["nft", "-f", "-"]), {
			input: `table inet bench_loss {\n chain input_loss {\n  type filter hook input priority 0;\n  ip saddr 198.18.0.0/16 numgen random mod 10 == 0 drop\n }\n}\n`,
		});
	}
	const hog = saturate(rec, "n5", procs.get("n5")!.pid!);
	const soakStart = Date.now();
	await sleep(SOAK * 1000);
	await hog.stop();
	const falseFailures = sys.events.filter((e) => e.ev === "fail" && e.t >= soakStart).length;
	for (const n of nodes)
		await run(netnsArgv(rec, n, ["nft", "delete", "table", "inet", "bench_loss"]), { allowFailure: true });
	log(`${sys.name}: ${falseFailures} false failure events in ${SOAK} s with 10% loss and a CPU hog`);
	await Promise.all([...procs.values()].map(kill));
	return {
		converge_ms: convergeMs,
		detect_ms_median: pct(detections, 50),
		detect_ms_p99: pct(detections, 99),
		false_failures: falseFailures,
		idle_bytes_per_s: Math.round(idleBps),
	};
}

async function main() {
	// The peer first: a fresh machine gets Debian's serf before any lab is made.
	ensurePeers([{ bin: "serf", pkg: "serf" }]);
	const rec = await createLab({ name: uniqueName("mb"), nodes: 10 });
	let cleaned: Promise<unknown> | undefined;
	const cleanup = () => (cleaned ??= destroyRecord(labRoot(), rec, 0));
	process.on("SIGTERM", () => void cleanup().then(() => process.exit(143)));
	process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
	try {
		log(`lab ${rec.name}: 10 nodes; kills ${KILLS}, soak ${SOAK} s`);
		const o = await measure(rec, ours(rec));
		const s = await measure(rec, serf(rec));
		// The simulations need no lab, and they run synchronously for minutes (a SIGTERM handler
		// would not get a turn): take the lab down first.
		await cleanup();
		log(`simulating ${SIM} members of ours (virtual time)`);
		const sim = await simCluster(SIM, { seed: 1 });
		const simConverge = sim.runUntil(() => converged(sim.nodes, SIM), 300_000, 250);
		const b0 = sim.bytesSent();
		sim.run(60_000);
		const simBps = (sim.bytesSent() - b0) / SIM / 60;
		for (const m of sim.nodes) await m.stop();
		log(`sim: ${SIM} members converged in ${simConverge} virtual ms; ${Math.round(simBps)} bytes/s per node`);
		// A tenth of the members cut off (a half costs ~n^2/2 failure floods, minutes of CPU at 1,000).
		const hard = await scenario(SIM, {
			seed: 2,
			loss: 0.05,
			slowNodes: 10,
			slowMs: 100,
			soakMs: 60_000,
			partitionFraction: 0.1,
		});
		log(`sim with 5% loss and 10 slow nodes, then a 10/90 partition: ${JSON.stringify(hard)}`);
		const oursFig = {
			...o,
			sim_members: SIM,
			sim_converge_ms: simConverge ?? -1,
			sim_bytes_per_s: Math.round(simBps),
			sim_lossy_converge_ms: hard.convergeMs,
			sim_lossy_bytes_per_s: hard.bytesPerSecPerNode,
			sim_lossy_false_failures: hard.falseFailures,
			sim_partition_split_ms: hard.partitionSplitMs,
			sim_partition_merge_ms: hard.partitionMergeMs,
		};
		// false_failures: 0/0 counts as 1 (as good), n/0 as null (no ratio, ours is worse).
		const ratio = (a: number, b: number) => (b > 0 ? +(a / b).toFixed(3) : a === 0 ? 1 : null);
		const ratios = Object.fromEntries(
			(["converge_ms", "detect_ms_median", "detect_ms_p99", "idle_bytes_per_s", "false_failures"] as const).map((k) => [
				k,
				ratio(o[k], s[k]),
			]),
		);
		process.stdout.write(
			`${JSON.stringify({ bench: "membership-vs-serf", peer_name: "serf 0.8 (Debian), default LAN profile", ours: oursFig, peer: s, ratios })}\n`,
		);
	} catch (err) {
		await cleanup();
		throw err;
	}
}

await main();
