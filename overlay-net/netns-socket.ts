// Run as a short-lived child inside another network namespace (through nsenter): binds a UDP
// socket (and, with "tcp", a listening TCP server) there and hands them to the parent over the IPC
// channel, then exits. The parent keeps them, and they stay in that namespace; this is how one
// agent serves DNS inside every network. (The release executable runs it as tsswarm __netns-socket.)
import { createSocket } from "node:dgram";
import { createServer } from "node:net";

/** The command line: `<address> <port> udp|tcp`. */
export function main(argv: string[]): void {
	const [address, port, tcp] = argv;
	const fail = (err: Error) => process.send?.({ error: err.message }, undefined, {}, () => process.exit(1));
	const sock = createSocket("udp4");
	sock.on("error", fail);
	sock.bind(Number(port), address, () => {
		process.send?.({ ok: true, kind: "udp" }, sock, {}, () => {
			if (tcp !== "tcp") process.exit(0);
			const server = createServer();
			server.on("error", fail);
			server.listen(Number(port), address, () => {
				process.send?.({ ok: true, kind: "tcp" }, server, {}, () => process.exit(0));
			});
		});
	});
}

if (import.meta.main) main(process.argv.slice(2));
