// One membership member over UDP, printing its events as JSON lines (used by bench/membership-vs-serf):
//   node agent/membership/daemon.ts --id n1 --bind 198.18.0.1:7946 --key HEX [--join 198.18.0.2:7946,...]
import { parseArgs } from "node:util";
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
const m = new Membership({
	id: values.id,
	transport: new UdpTransport(host!, Number(port)),
	clusterKey: Buffer.from(values.key, "hex"),
	config: lanConfig(),
});
const emit = (ev: string, id: string) =>
	process.stdout.write(`${JSON.stringify({ t: Date.now(), ev, id, live: m.live().length })}\n`);
for (const ev of ["join", "alive", "suspect", "fail", "leave"] as const) m.on(ev, (x) => emit(ev, x.id));
await m.start();
if (values.join) m.join(values.join.split(","));
emit("ready", values.id);
process.on("SIGTERM", () => void m.leave(500).then(() => process.exit(0)));
