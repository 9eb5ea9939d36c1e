// bench/disk-writes (flash wear): bytes a manager and a worker write to storage per Raft write and
// per idle hour vs a one-member etcd (Debian etcd-server) in the same run, all on 127.0.0.1 with
// their own data dirs. Counted by /proc/PID/io write_bytes (logs go to /dev/null) and du of the dirs.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { call, socketPath } from "../../agent/api/index.ts";
import { stopProcess } from "../lib/stop.ts";

const log = (m: string) => process.stderr.write(`[disk-writes] ${m}\n`);
const repo = new URL("../..", import.meta.url).pathname;
const WRITES = Number(process.env.DISK_WRITES_N ?? 200);
const IDLE_S = Number(process.env.DISK_IDLE_S ?? 300);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const writeBytes = (pid: number) => Number(/^write_bytes: (\d+)/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1]);
const du = (dir: string) => Number(execFileSync("du", ["-sb", dir], { encoding: "utf8" }).split("\t")[0]);

async function waitFor(what: string, f: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
	const end = Date.now() + timeoutMs;
	while (!(await f())) {
		if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
		await sleep(250);
	}
}

function post(port: number, path: string, body: unknown): Promise<number> {
	return new Promise((resolve, reject) => {
		const req = request({ host: "127.0.0.1", port, path, method: "POST" }, (res) => {
			res.resume();
			res.on("end", () => resolve(res.statusCode ?? 0));
		});
		req.on("error", reject);
		req.end(JSON.stringify(body));
	});
}

function findEtcd(): string {
	const has = () => spawnSync("sh", ["-c", "command -v etcd"]).status === 0;
	if (!has()) {
		log("installing Debian's etcd-server with apt-get");
		execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "etcd-server"], {
			stdio: "inherit",
			env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
		});
	}
	return "etcd";
}

async function main() {
	const etcdBin = findEtcd();
	const dir = mkdtempSync(join(tmpdir(), "bench-disk-writes-"));
	const procs: ChildProcess[] = [];
	const base = 21000 + Math.floor(Math.random() * 20000);
	try {
		// Two agents from source (the binary writes the same files): a manager (init) and a worker.
		const agent = (name: string, port: number) => {
			const root = join(dir, name);
			mkdirSync(root);
			const p = spawn(join(repo, "cli", "tsswarm"), ["agent", "--listen-addr", `127.0.0.1:${port}`], {
				stdio: "ignore",
				env: { ...process.env, TSSWARM_DATA_ROOT: root, TSSWARM_NODE: name },
			});
			procs.push(p);
			return { p, root };
		};
		const mgr = agent("manager", base);
		const wrk = agent("worker", base + 1);
		for (const a of [mgr, wrk]) await waitFor("an agent socket", () => existsSync(socketPath(a.root)), 60_000);
		const init = await call<{ tokens: { worker: string } }>(mgr.root, "POST", "/v1/init", {});
		await call(wrk.root, "POST", "/v1/join", { token: init.tokens.worker, addr: `127.0.0.1:${base}` });
		await waitFor(
			"the worker alive on the manager",
			async () => (await call<{ state: string }[]>(mgr.root, "GET", "/v1/nodes")).every((n) => n.state === "alive"),
			60_000,
		);

		const etcdDir = join(dir, "etcd");
		const [cp, pp] = [base + 2, base + 3];
		const etcd = spawn(
			etcdBin,
			[
				"--name",
				"bench",
				"--data-dir",
				etcdDir,
				"--listen-client-urls",
				`http://127.0.0.1:${cp}`,
				"--advertise-client-urls",
				`http://127.0.0.1:${cp}`,
				"--listen-peer-urls",
				`http://127.0.0.1:${pp}`,
				"--initial-advertise-peer-urls",
				`http://127.0.0.1:${pp}`,
				"--initial-cluster",
				`bench=http://127.0.0.1:${pp}`,
			],
			{ stdio: "ignore" },
		);
		procs.push(etcd);
		const b64 = (s: string) => Buffer.from(s).toString("base64");
		await waitFor(
			"etcd",
			() =>
				post(cp, "/v3/kv/put", { key: b64("warm"), value: b64("up") }).then(
					(s) => s === 200,
					() => false,
				),
			60_000,
		);
		await sleep(5000); // both settle after start (first snapshot/segment files, elections)

		// Per write: N network creates through the manager's API; N puts of a record of the same size to etcd.
		const sample = await call<Record<string, unknown>>(mgr.root, "POST", "/v1/networks", {
			name: "dw-sample",
			driver: "overlay",
		});
		const value = JSON.stringify(sample);
		const m0 = writeBytes(mgr.p.pid!);
		const d0 = du(mgr.root);
		for (let i = 0; i < WRITES; i++)
			await call(mgr.root, "POST", "/v1/networks", { name: `dw-${i}`, driver: "overlay" });
		const mPer = (writeBytes(mgr.p.pid!) - m0) / WRITES;
		const mDu = (du(mgr.root) - d0) / WRITES;
		const e0 = writeBytes(etcd.pid!);
		const ed0 = du(etcdDir);
		for (let i = 0; i < WRITES; i++) {
			const s = await post(cp, "/v3/kv/put", { key: b64(`/networks/dw-${i}`), value: b64(value) });
			if (s !== 200) throw new Error(`etcd put: HTTP ${s}`);
		}
		const ePer = (writeBytes(etcd.pid!) - e0) / WRITES;
		const eDu = (du(etcdDir) - ed0) / WRITES;
		log(
			`per write (record ${value.length} B): manager ${mPer.toFixed(0)} B (du ${mDu.toFixed(0)}), etcd ${ePer.toFixed(0)} B (du ${eDu.toFixed(0)})`,
		);

		// Idle: the same window for all three, extrapolated to an hour.
		await sleep(5000);
		const i0 = { m: writeBytes(mgr.p.pid!), w: writeBytes(wrk.p.pid!), e: writeBytes(etcd.pid!) };
		log(`idle window ${IDLE_S} s`);
		await sleep(IDLE_S * 1000);
		const perHour = (b: number) => Math.round((b * 3600) / IDLE_S);
		const idle = {
			manager: perHour(writeBytes(mgr.p.pid!) - i0.m),
			worker: perHour(writeBytes(wrk.p.pid!) - i0.w),
			etcd: perHour(writeBytes(etcd.pid!) - i0.e),
		};
		log(`idle per hour: ${JSON.stringify(idle)}`);
		const r3 = (x: number) => Math.round(x * 1000) / 1000;
		process.stdout.write(
			`${JSON.stringify({
				bench: "disk-writes",
				peer_name: "etcd 3.4 one member (Debian etcd-server)",
				ours: {
					writes: WRITES,
					record_bytes: value.length,
					manager_bytes_per_write: Math.round(mPer),
					manager_du_bytes_per_write: Math.round(mDu),
					manager_idle_bytes_per_hour: idle.manager,
					worker_idle_bytes_per_hour: idle.worker,
					idle_window_s: IDLE_S,
				},
				peer: {
					etcd_bytes_per_write: Math.round(ePer),
					etcd_du_bytes_per_write: Math.round(eDu),
					etcd_idle_bytes_per_hour: idle.etcd,
				},
				ratios: {
					bytes_per_write: r3(mPer / ePer),
					manager_idle_per_hour: idle.etcd ? r3(idle.manager / idle.etcd) : 0,
					worker_idle_per_hour: idle.etcd ? r3(idle.worker / idle.etcd) : 0,
				},
			})}\n`,
		);
	} finally {
		for (const p of procs.reverse()) await stopProcess(p);
		rmSync(dir, { recursive: true, force: true });
	}
}

await main();
