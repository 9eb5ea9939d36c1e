// Starts N kv-server processes on loopback (free ports), bootstrapped as one cluster; used by the
// kv-server test and by bench/raft-vs-etcd.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

const serverPath = new URL("./server.ts", import.meta.url).pathname;

export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const s = createServer();
		s.once("error", reject);
		s.listen(0, "127.0.0.1", () => {
			const a = s.address();
			s.close(() => (typeof a === "object" && a ? resolve(a.port) : reject(new Error("no port"))));
		});
	});
}

export interface KvMember {
	id: string;
	dataDir: string;
	httpPort: number;
	raftPort: number;
	proc?: ChildProcess;
}

export class KvCluster {
	readonly members: KvMember[] = [];
	private readonly peersFile: string;

	private constructor(peersFile: string) {
		this.peersFile = peersFile;
	}

	static async start(dir: string, n: number): Promise<KvCluster> {
		const c = new KvCluster(join(dir, "peers.json"));
		for (let i = 0; i < n; i++) {
			const dataDir = join(dir, `m${i + 1}`);
			const id = execFileSync(process.execPath, [serverPath, "keygen", "--data", dataDir], { encoding: "utf8" }).trim();
			c.members.push({ id, dataDir, httpPort: await freePort(), raftPort: await freePort() });
		}
		writeFileSync(
			c.peersFile,
			JSON.stringify(c.members.map((m) => ({ id: m.id, address: `/ip4/127.0.0.1/tcp/${m.raftPort}/p2p/${m.id}` }))),
		);
		await Promise.all(c.members.map((m) => c.spawn(m, true)));
		return c;
	}

	spawn(m: KvMember, bootstrap = false): Promise<void> {
		const args = [
			serverPath,
			"serve",
			"--data",
			m.dataDir,
			"--raft-port",
			String(m.raftPort),
			"--http-port",
			String(m.httpPort),
			"--peers",
			this.peersFile,
		];
		if (bootstrap) args.push("--bootstrap");
		const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
		m.proc = proc;
		return new Promise((resolve, reject) => {
			let out = "";
			proc.stdout!.on("data", (d) => {
				out += d;
				if (out.includes('"ready":true')) resolve();
			});
			proc.once("exit", (code) => reject(new Error(`kv-server ${m.id} exited with ${code} before it was ready`)));
		});
	}

	async status(m: KvMember): Promise<{ state: string; leader: string; commitIndex: number } | undefined> {
		try {
			const r = await fetch(`http://127.0.0.1:${m.httpPort}/status`, { signal: AbortSignal.timeout(1000) });
			return (await r.json()) as { state: string; leader: string; commitIndex: number };
		} catch {
			return undefined;
		}
	}

	/** The member that says it leads, once all live members agree on it. */
	async leader(timeoutMs = 15_000): Promise<KvMember> {
		const deadline = Date.now() + timeoutMs;
		while (Date.now() < deadline) {
			const live = this.members.filter((m) => m.proc && m.proc.exitCode === null && m.proc.signalCode === null);
			const sts = await Promise.all(live.map((m) => this.status(m)));
			const leaders = live.filter((_, i) => sts[i]?.state === "leader");
			if (leaders.length === 1) return leaders[0]!;
			await new Promise((r) => setTimeout(r, 20));
		}
		throw new Error(`no kv-server leader within ${timeoutMs} ms`);
	}

	kill(m: KvMember, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
		const p = m.proc;
		if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
		return new Promise((r) => {
			p.once("exit", () => r());
			p.kill(signal);
		});
	}

	async stop(): Promise<void> {
		await Promise.all(this.members.map((m) => this.kill(m, "SIGKILL")));
	}
}
