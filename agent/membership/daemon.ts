// One membership member over UDP, printing its events as JSON lines (used by bench/membership-vs-serf):
//   node agent/membership/daemon.ts --id n1 --bind 198.18.0.1:7946 --key HEX [--join 198.18.0.2:7946,...]
// The member id is the peer id of a fresh Ed25519 key; events name members by --id (a "name" label).
import { parseArgs } from "node:util";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { lanConfig, Membership, UdpTransport } from "./index.ts";

const { values } = parseArgs({
	options: {
		id: { type: "string" },
		bind: { type: "string" },
		key: { type: "string" },
		join: { type: "string", default: "" },
	},
});
if (!values.id || !values.bind || !values.key) throw new Error("--id, --bind and --key are required");
const [host, port] = values.bind.split(":");
const nodeKey = await generateKeyPair("Ed25519");
const m = new Membership({
	id: peerIdFromPrivateKey(nodeKey).toString(),
	nodeKey,
	transport: new UdpTransport(host!, Number(port)),
	clusterKey: Buffer.from(values.key, "hex"),
	config: lanConfig(),
	meta: { labels: { name: values.id } },
});
const emit = (ev: string, id: string) =>
	process.stdout.write(`${JSON.stringify({ t: Date.now(), ev, id, live: m.live().length })}\n`);
for (const ev of ["join", "alive", "suspect", "fail", "leave"] as const)
	m.on(ev, (x) => emit(ev, x.meta.labels?.name ?? x.id));
await m.start();
if (values.join) m.join(values.join.split(","));
emit("ready", values.id);
process.on("SIGTERM", () => void m.leave(500).then(() => process.exit(0)));
