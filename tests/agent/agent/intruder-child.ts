// Runs in a lab node's namespace as an intruder the test drives over stdin, one command a line:
// `list` asks a manager for the node directory, `raft` sends a forged higher-term heartbeat on
// the Raft protocol. Each answer is one JSON line. A "rogue" also joins gossip with a stolen key.
import { createInterface } from "node:readline";
import { multiaddr } from "@multiformats/multiaddr";
import { Host, MemoryAllowList } from "../../../agent/host/index.ts";
import { MANAGER_PROTOCOL } from "../../../agent/manager/index.ts";
import { lanConfig, Membership, UdpTransport } from "../../../agent/membership/index.ts";
import { encodeFrame, RAFT_PROTOCOL } from "../../../consensus/index.ts";

const o = JSON.parse(process.argv[2]!) as {
	dataDir: string;
	ip: string;
	/** The manager: ip:port and peer id. */
	target: { addr: string; id: string };
	clusterId: string;
	/** Join gossip with this (stolen) membership key. */
	membershipKey?: string;
};
const allow = new MemoryAllowList();
allow.add(o.target.id);
const host = await Host.create({ dataDir: o.dataDir, listen: [`/ip4/${o.ip}/tcp/0`], allowList: allow });
const [tip, tport] = o.target.addr.split(":");
const target = `/ip4/${tip}/tcp/${tport}/p2p/${o.target.id}`;
let membership: Membership | undefined;
if (o.membershipKey) {
	membership = new Membership({
		id: host.peerId,
		transport: new UdpTransport(o.ip, 2377, `${o.ip}:2377`),
		clusterKey: Buffer.from(o.membershipKey, "base64"),
		nodeKey: host.privateKey,
		config: lanConfig(),
		meta: { addresses: host.addrs(), role: "worker", version: "0.1.0" },
	});
	await membership.start();
	membership.join([o.target.addr]);
}
const say = (x: object) => process.stdout.write(`${JSON.stringify({ id: host.peerId, ...x })}\n`);
say({ ready: true });

async function list() {
	try {
		const reply = await host.session(
			target,
			MANAGER_PROTOCOL,
			async (io) => {
				io.send({ kind: "nodes.list", body: { since: -1 } });
				return io.next();
			},
			{ timeoutMs: 3000 },
		);
		say({ cmd: "list", ok: true, reply });
	} catch (err) {
		say({ cmd: "list", ok: false, error: (err as Error).message });
	}
}

async function raft() {
	try {
		const stream = await host.node.dialProtocol(multiaddr(target), RAFT_PROTOCOL, {
			signal: AbortSignal.timeout(3000),
		});
		const forged = {
			type: "heartbeat",
			term: 1_000_000,
			from: host.peerId,
			to: o.target.id,
			commit: 1_000_000,
			ctx: 0,
		};
		stream.send(encodeFrame({ c: o.clusterId, m: forged }, 1 << 20));
		say({ cmd: "raft", sent: true });
	} catch (err) {
		say({ cmd: "raft", sent: false, error: (err as Error).message });
	}
}

for await (const line of createInterface({ input: process.stdin })) {
	if (line === "list") await list();
	else if (line === "raft") await raft();
	else if (line === "exit") break;
}
await membership?.stop();
await host.stop();
