// Syscalls per write on the 1-client path: three kv-servers (as in index.ts), `strace -c -f` attached
// to the leader and one follower while one client writes N times in sequence. Prints per-write counts
// of the syscalls that matter (socket writes and reads, epoll waits, futex wake-ups, fsyncs) as one
// JSON line. Not part of the bench contract (no peer): a tool to see where the per-message cost goes.
//
//   node bench/raft-vs-etcd/syscalls.ts [--writes 1000]      (needs strace: apt-get install -y strace)
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { KvCluster } from "../../consensus/examples/kv-server/cluster.ts";

const { values } = parseArgs({ options: { writes: { type: "string", default: "1000" } } });
const N = Number(values.writes);
const agent = new Agent({ keepAlive: true, maxSockets: 4 });
const VALUE = Buffer.from("x".repeat(100)).toString("base64");

function put(port: number, key: string): Promise<number> {
	const data = JSON.stringify({ key: Buffer.from(key).toString("base64"), value: VALUE });
	return new Promise((resolve, reject) => {
		const req = request(
			{ host: "127.0.0.1", port, path: "/v3/kv/put", method: "POST", agent, timeout: 5000 },
			(res) => {
				res.resume();
				res.on("end", () => resolve(res.statusCode ?? 0));
			},
		);
		req.on("timeout", () => req.destroy(new Error("timeout")));
		req.on("error", reject);
		req.end(data);
	});
}

async function writes(port: number, n: number, tag: string): Promise<void> {
	for (let i = 0; i < n; i++) {
		const status = await put(port, `${tag}-${i}`);
		if (status !== 200) throw new Error(`write ${i} answered ${status}`);
	}
}

/** strace -c summary → { syscall: calls }. */
function parseSummary(text: string): Record<string, number> {
	const out: Record<string, number> = {};
	for (const line of text.split("\n")) {
		const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
		if (m) out[m[2]!] = Number(m[1]);
	}
	return out;
}

function attach(pid: number, file: string): ChildProcess {
	return spawn("strace", ["-c", "-f", "-o", file, "-p", String(pid)], { stdio: "ignore" });
}

async function main() {
	const dir = mkdtempSync(join(tmpdir(), "bench-raft-syscalls-"));
	let cluster: KvCluster | undefined;
	const tracers: ChildProcess[] = [];
	try {
		cluster = await KvCluster.start(dir, 3);
		const leader = await cluster.leader();
		const follower = cluster.members.find((m) => m !== leader)!;
		await writes(leader.httpPort, 500, "warm");
		const files = { leader: join(dir, "leader.strace"), follower: join(dir, "follower.strace") };
		tracers.push(attach(leader.proc!.pid!, files.leader), attach(follower.proc!.pid!, files.follower));
		await new Promise((r) => setTimeout(r, 1500)); // strace attaches to every thread
		const t0 = performance.now();
		await writes(leader.httpPort, N, "measured");
		const ms = performance.now() - t0;
		// strace writes its summary when interrupted.
		await Promise.all(
			tracers.map(
				(p) =>
					new Promise<void>((r) => {
						p.once("exit", () => r());
						p.kill("SIGINT");
					}),
			),
		);
		const keep = [
			"write",
			"writev",
			"sendmsg",
			"read",
			"readv",
			"recvmsg",
			"epoll_wait",
			"epoll_pwait",
			"futex",
			"fdatasync",
		];
		const per = (s: Record<string, number>) => {
			const o: Record<string, number> = {};
			let total = 0;
			for (const [k, v] of Object.entries(s)) {
				if (k === "total") continue;
				total += v;
				if (keep.includes(k)) o[k] = +(v / N).toFixed(2);
			}
			o.total = +(total / N).toFixed(2);
			return o;
		};
		const result = {
			writes: N,
			writes_per_s_traced: Math.round(N / (ms / 1000)),
			leader_per_write: per(parseSummary(readFileSync(files.leader, "utf8"))),
			follower_per_write: per(parseSummary(readFileSync(files.follower, "utf8"))),
		};
		process.stdout.write(`${JSON.stringify(result)}\n`);
	} finally {
		for (const p of tracers) if (p.exitCode === null) p.kill("SIGKILL");
		await cluster?.stop();
		rmSync(dir, { recursive: true, force: true });
	}
}

await main();
