// bench/raft-vs-etcd: three raft-ts kv-servers vs three etcd members (Debian's etcd-server), same
// machine, same disk, same heartbeat (100 ms) and election timeout (1000 ms), driven by the same
// Node HTTP client (etcd through its v3 JSON gateway). Measures writes/s and latency with 1 and 64
// clients, leader failover (SIGKILL the leader; time to the next acknowledged write) and idle RSS.
// Last line: {"bench":"raft-vs-etcd","ours":{...},"peer":{...},"ratios":{...}}.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { freePort, KvCluster } from "../../consensus/examples/kv-server/cluster.ts";
import { ensurePeers } from "../../scripts/peers.ts";

const { values } = parseArgs({
	options: { seconds: { type: "string", default: "5" }, "sequential-writes": { type: "string", default: "300" } },
});
const SECONDS = Number(values.seconds);
const SEQUENTIAL = Number(values["sequential-writes"]);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const log = (m: string) => process.stderr.write(`[raft-vs-etcd] ${m}\n`);
let ETCD = "etcd";

function post(port: number, path: string, body: unknown, timeoutMs = 5000): Promise<{ status: number; json: unknown }> {
	const data = JSON.stringify(body);
	return new Promise((resolve, reject) => {
		const req = request(
			{
				host: "127.0.0.1",
				port,
				path,
				method: "POST",
				agent,
				headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) },
				timeout: timeoutMs,
			},
			(res) => {
				const chunks: Buffer[] = [];
				res.on("data", (c: Buffer) => chunks.push(c));
				res.on("end", () => {
					const text = Buffer.concat(chunks).toString();
					let json: unknown;
					try {
						json = JSON.parse(text);
					} catch {
						json = text;
					}
					resolve({ status: res.statusCode ?? 0, json });
				});
			},
		);
		req.on("timeout", () => req.destroy(new Error("timeout")));
		req.on("error", reject);
		req.end(data);
	});
}

const b64 = (s: string) => Buffer.from(s).toString("base64");
const VALUE = b64("x".repeat(100));

async function putOk(port: number, key: string, timeoutMs?: number): Promise<boolean> {
	try {
		const r = await post(port, "/v3/kv/put", { key: b64(key), value: VALUE }, timeoutMs);
		return r.status === 200;
	} catch {
		return false;
	}
}

function pct(sorted: number[], p: number): number {
	return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function load(port: number, clients: number, opts: { seconds?: number; count?: number }) {
	const lat: number[] = [];
	let errors = 0;
	const start = performance.now();
	const until = opts.seconds ? start + opts.seconds * 1000 : Number.POSITIVE_INFINITY;
	let issued = 0;
	await Promise.all(
		Array.from({ length: clients }, async (_, c) => {
			while (performance.now() < until && (opts.count === undefined || issued < opts.count)) {
				issued++;
				const t0 = performance.now();
				if (await putOk(port, `c${c}-${issued}`)) lat.push(performance.now() - t0);
				else errors++;
			}
		}),
	);
	const secs = (performance.now() - start) / 1000;
	lat.sort((a, b) => a - b);
	return {
		writes_per_s: Math.round(lat.length / secs),
		p50_ms: +pct(lat, 50).toFixed(3),
		p99_ms: +pct(lat, 99).toFixed(3),
		errors,
	};
}

function rssMb(pid: number): number {
	const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
	return m ? +(Number(m[1]) / 1024).toFixed(1) : Number.NaN;
}

interface EtcdMember {
	name: string;
	client: number;
	peer: number;
	proc?: ChildProcess;
}

async function startEtcd(dir: string): Promise<EtcdMember[]> {
	const ms: EtcdMember[] = [];
	for (let i = 1; i <= 3; i++) ms.push({ name: `e${i}`, client: await freePort(), peer: await freePort() });
	const cluster = ms.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
	for (const m of ms) {
		m.proc = spawn(
			ETCD,
			[
				"--name",
				m.name,
				"--data-dir",
				join(dir, m.name),
				"--listen-client-urls",
				`http://127.0.0.1:${m.client}`,
				"--advertise-client-urls",
				`http://127.0.0.1:${m.client}`,
				"--listen-peer-urls",
				`http://127.0.0.1:${m.peer}`,
				"--initial-advertise-peer-urls",
				`http://127.0.0.1:${m.peer}`,
				"--initial-cluster",
				cluster,
				"--initial-cluster-state",
				"new",
				"--initial-cluster-token",
				`bench-${process.pid}`,
				"--heartbeat-interval",
				"100",
				"--election-timeout",
				"1000",
				"--log-level",
				"error",
			],
			{ stdio: ["ignore", "ignore", "pipe"] },
		);
		m.proc.stderr?.resume();
		// A binary that vanished or cannot run: log it (an unhandled 'error' would crash the run); the
		// run then fails when no etcd leader is elected, and cleanup kills what started.
		m.proc.once("error", (err) => log(`etcd ${m.name} failed to start: ${err.message}`));
	}
	return ms;
}

async function etcdLeader(ms: EtcdMember[], timeoutMs = 20_000): Promise<EtcdMember> {
	const deadline = Date.now() + timeoutMs;
	while (Date.now() < deadline) {
		for (const m of ms) {
			if (!m.proc || m.proc.exitCode !== null || m.proc.signalCode !== null) continue;
			try {
				const r = await post(m.client, "/v3/maintenance/status", {});
				const j = r.json as { header?: { member_id?: string }; leader?: string };
				if (r.status === 200 && j.leader && j.header?.member_id === j.leader) return m;
			} catch {}
		}
		await new Promise((r) => setTimeout(r, 50));
	}
	throw new Error("etcd elected no leader");
}

function kill(p: ChildProcess | undefined): Promise<void> {
	if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
	return new Promise((r) => {
		p.once("exit", () => r());
		p.kill("SIGKILL");
	});
}

/**
 * SIGKILL the leader, then write round-robin to the survivors until one write is acknowledged.
 * Each probe gives up after 250 ms: etcd holds a write on a follower until a leader exists (ours
 * answers 503 at once), so a long client timeout would measure the client, not the failover.
 */
async function failover(ports: number[], killLeader: () => Promise<void>): Promise<number> {
	const t0 = performance.now();
	await killLeader();
	for (let i = 0; ; i++) {
		if (await putOk(ports[i % ports.length]!, `failover-${i}`, 250)) return +(performance.now() - t0).toFixed(1);
		if (performance.now() - t0 > 30_000) throw new Error("no write acknowledged within 30 s of the failover");
	}
}

/** The etcd binary: ETCD_BIN, or Debian's etcd-server (installed here when missing). */
function findEtcd(): string {
	if (!process.env.ETCD_BIN) ensurePeers([{ bin: "etcd", pkg: "etcd-server", disableUnits: ["etcd.service"] }]);
	for (const bin of [process.env.ETCD_BIN, "etcd", "/usr/bin/etcd"]) {
		if (!bin) continue;
		try {
			const v = execFileSync(bin, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
			log(`peer: ${v.split("\n")[0]}`);
			return bin;
		} catch {}
	}
	throw new Error(`no etcd binary runs (ETCD_BIN=${process.env.ETCD_BIN ?? ""}, etcd on PATH)`);
}

async function main() {
	ETCD = findEtcd();
	const dir = mkdtempSync(join(tmpdir(), "bench-raft-etcd-"));
	mkdirSync(join(dir, "ours"));
	mkdirSync(join(dir, "etcd"));
	let ours: KvCluster | undefined;
	let etcd: EtcdMember[] = [];
	const cleanup = async () => {
		await ours?.stop();
		await Promise.all(etcd.map((m) => kill(m.proc)));
		rmSync(dir, { recursive: true, force: true });
	};
	process.on("SIGTERM", () => void cleanup().then(() => process.exit(143)));
	process.on("SIGINT", () => void cleanup().then(() => process.exit(130)));
	try {
		log("starting 3 raft-ts kv-servers and 3 etcd members on 127.0.0.1");
		ours = await KvCluster.start(join(dir, "ours"), 3);
		etcd = await startEtcd(join(dir, "etcd"));
		const ol = await ours.leader();
		const el = await etcdLeader(etcd);
		await putOk(ol.httpPort, "warm");
		await putOk(el.client, "warm");
		await new Promise((r) => setTimeout(r, 2000));
		const idle = { ours: rssMb(ol.proc!.pid!), etcd: rssMb(el.proc!.pid!) };
		log(`idle RSS of the leader: ours ${idle.ours} MiB, etcd ${idle.etcd} MiB`);
		// Warm both up alike (unmeasured): a JIT-compiled server is slow for its first requests.
		log("warm-up: 2 s of 8 clients on each");
		await load(ol.httpPort, 8, { seconds: 2 });
		await load(el.client, 8, { seconds: 2 });

		// Alternate the two systems so machine noise hits both alike.
		log(`1 client, ${SEQUENTIAL} sequential writes each`);
		const o1 = await load(ol.httpPort, 1, { count: SEQUENTIAL });
		const e1 = await load(el.client, 1, { count: SEQUENTIAL });
		log(`  ours ${JSON.stringify(o1)}  etcd ${JSON.stringify(e1)}`);
		log(`64 clients, ${SECONDS} s each`);
		const o64 = await load(ol.httpPort, 64, { seconds: SECONDS });
		const e64 = await load(el.client, 64, { seconds: SECONDS });
		log(`  ours ${JSON.stringify(o64)}  etcd ${JSON.stringify(e64)}`);

		log("failover: SIGKILL the leader, time to the next acknowledged write");
		const ofail = await failover(
			ours.members.filter((m) => m !== ol).map((m) => m.httpPort),
			() => ours!.kill(ol),
		);
		const efail = await failover(
			etcd.filter((m) => m !== el).map((m) => m.client),
			() => kill(el.proc),
		);
		log(`  ours ${ofail} ms, etcd ${efail} ms`);

		const oursFig = {
			writes_per_s_1: o1.writes_per_s,
			p50_ms_1: o1.p50_ms,
			p99_ms_1: o1.p99_ms,
			writes_per_s_64: o64.writes_per_s,
			p50_ms_64: o64.p50_ms,
			p99_ms_64: o64.p99_ms,
			failover_ms: ofail,
			idle_rss_mb: idle.ours,
		};
		const peerFig = {
			writes_per_s_1: e1.writes_per_s,
			p50_ms_1: e1.p50_ms,
			p99_ms_1: e1.p99_ms,
			writes_per_s_64: e64.writes_per_s,
			p50_ms_64: e64.p50_ms,
			p99_ms_64: e64.p99_ms,
			failover_ms: efail,
			idle_rss_mb: idle.etcd,
		};
		const ratios = Object.fromEntries(
			Object.keys(oursFig).map((k) => [
				k,
				+((oursFig as Record<string, number>)[k]! / (peerFig as Record<string, number>)[k]!).toFixed(3),
			]),
		);
		await cleanup();
		process.stdout.write(
			`${JSON.stringify({ bench: "raft-vs-etcd", peer_name: "etcd 3.4 (Debian etcd-server)", ours: oursFig, peer: peerFig, ratios })}\n`,
		);
	} catch (err) {
		await cleanup();
		throw err;
	}
}

await main();
