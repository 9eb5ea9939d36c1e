// Run as a short-lived child inside another network namespace (through nsenter): binds a UDP
// socket there and hands it to the parent over the IPC channel, then exits. The parent keeps the
// socket, which stays in that namespace; this is how one agent serves DNS inside every network.
import { createSocket } from "node:dgram";

const [address, port] = process.argv.slice(2);
const sock = createSocket("udp4");
sock.on("error", (err) => {
	process.send?.({ error: err.message }, undefined, {}, () => process.exit(1));
});
sock.bind(Number(port), address, () => {
	process.send?.({ ok: true }, sock, {}, () => process.exit(0));
});
