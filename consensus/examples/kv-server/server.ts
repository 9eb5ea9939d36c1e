// A replicated KV server on raft-ts: one process per member, Raft over libp2p on loopback, durable
// stores with fsync, and an HTTP API shaped like etcd's v3 JSON gateway (base64 keys and values),
// so the same client can drive both in bench/raft-vs-etcd.
//
//   node server.ts keygen --data DIR                 prints the member's id (its libp2p peer id)
//   node server.ts serve --data DIR --raft-port P --http-port H --peers peers.json [--bootstrap]
//
// peers.json: [{ "id": peerId, "address": "/ip4/127.0.0.1/tcp/P/p2p/peerId" }, ...]
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { pack, unpack } from "msgpackr";
import {
	createRaftNode,
	defaultConfig,
	FileLogStore,
	FileSnapshotStore,
	FileStableStore,
	type FSM,
	Libp2pTransport,
	NotLeaderError,
	Raft,
} from "../../index.ts";

class KvFsm implements FSM {
	map = new Map<string, string>();
	apply(e: { data: Uint8Array }) {
		const [k, v] = unpack(e.data) as [string, string];
		this.map.set(k, v);
		return undefined;
	}
	snapshot() {
		const data = pack([...this.map]);
		return { persist: (s: { write(b: Uint8Array): Promise<void> }) => s.write(data), release() {} };
	}
	restore(data: Uint8Array) {
		this.map = new Map(unpack(data) as Array<[string, string]>);
	}
}

async function loadKey(dir: string): Promise<Ed25519PrivateKey> {
	mkdirSync(dir, { recursive: true });
	const path = join(dir, "node.key");
	try {
		return privateKeyFromProtobuf(readFileSync(path)) as Ed25519PrivateKey;
	} catch {
		const key = await generateKeyPair("Ed25519");
		writeFileSync(path, privateKeyToProtobuf(key), { mode: 0o600 });
		return key;
	}
}

function body(req: IncomingMessage): Promise<Record<string, unknown>> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			try {
				resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {});
			} catch (err) {
				reject(err);
			}
		});
		req.on("error", reject);
	});
}

function reply(res: ServerResponse, code: number, obj: unknown): void {
	const b = JSON.stringify(obj);
	res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(b) });
	res.end(b);
}

async function serve(o: { data: string; raftPort: number; httpPort: number; peers: string; bootstrap: boolean }) {
	const key = await loadKey(o.data);
	const node = await createRaftNode({ listen: [`/ip4/127.0.0.1/tcp/${o.raftPort}`], privateKey: key });
	const id = node.peerId.toString();
	const logs = await FileLogStore.open({ dir: join(o.data, "log") });
	const stable = await FileStableStore.open(o.data);
	const snaps = new FileSnapshotStore(join(o.data, "snapshots"));
	if (o.bootstrap && (await logs.lastIndex()) === 0) {
		const peers = JSON.parse(readFileSync(o.peers, "utf8")) as Array<{ id: string; address: string }>;
		await Raft.bootstrap(logs, stable, { servers: peers.map((p) => ({ ...p, suffrage: "voter" as const })) });
	}
	const fsm = new KvFsm();
	// etcd's defaults: heartbeat 100 ms, election timeout 1000 ms (randomized up to 2x by both).
	const raft = new Raft(
		{
			...defaultConfig(id),
			tickMs: 50,
			heartbeatTicks: 2,
			electionTicks: 20,
			snapshotThreshold: 20_000,
			trailingLogs: 5000,
		},
		fsm,
		logs,
		stable,
		snaps,
		new Libp2pTransport({ node, clusterId: "kv-bench" }),
	);
	await raft.start();
	const http = createServer(async (req, res) => {
		try {
			if (req.method === "GET" && req.url === "/status") {
				reply(res, 200, { id, ...raft.stats(), leader: raft.leader()?.id ?? "" });
			} else if (req.method === "POST" && req.url === "/v3/kv/put") {
				const { key: k, value: v } = await body(req);
				if (typeof k !== "string" || typeof v !== "string")
					return reply(res, 400, { error: "key and value (base64) are required" });
				const r = await raft.apply(pack([k, v]), { timeoutMs: 5000 });
				reply(res, 200, { header: { revision: String(r.index), raft_term: String(raft.stats().term) } });
			} else if (req.method === "POST" && req.url === "/v3/kv/range") {
				const { key: k, serializable } = await body(req);
				// As in etcd: a serializable read answers from this member's state without asking
				// the leader (maybe stale); the default is linearizable (ReadIndex on the leader).
				if (serializable !== true) await raft.verifyLeader({ timeoutMs: 5000 });
				const v = fsm.map.get(String(k));
				reply(res, 200, { kvs: v === undefined ? [] : [{ key: k, value: v }] });
			} else reply(res, 404, { error: "not found" });
		} catch (err) {
			if (err instanceof NotLeaderError) reply(res, 503, { error: "not leader", leader: err.leader ?? "" });
			else reply(res, 500, { error: (err as Error).message });
		}
	});
	http.keepAliveTimeout = 60_000;
	await new Promise<void>((r) => http.listen(o.httpPort, "127.0.0.1", r));
	process.stdout.write(`${JSON.stringify({ ready: true, id, http: o.httpPort })}\n`);
	const stop = async () => {
		http.close();
		await raft.shutdown();
		await logs.close();
		await node.stop();
		process.exit(0);
	};
	process.on("SIGTERM", stop);
	process.on("SIGINT", stop);
}

const [cmd, ...rest] = process.argv.slice(2);
const { values } = parseArgs({
	args: rest,
	options: {
		data: { type: "string" },
		"raft-port": { type: "string" },
		"http-port": { type: "string" },
		peers: { type: "string" },
		bootstrap: { type: "boolean", default: false },
	},
});
if (!values.data) throw new Error("--data is required");
if (cmd === "keygen") {
	process.stdout.write(`${peerIdFromPrivateKey(await loadKey(values.data)).toString()}\n`);
} else if (cmd === "serve") {
	await serve({
		data: values.data,
		raftPort: Number(values["raft-port"]),
		httpPort: Number(values["http-port"]),
		peers: values.peers ?? "",
		bootstrap: values.bootstrap ?? false,
	});
} else {
	throw new Error(`unknown command ${cmd}: use keygen or serve`);
}
