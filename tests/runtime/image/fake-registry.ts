// A tiny registry stand-in on 127.0.0.1 for failure cases a real registry will not produce:
// wrong bytes for a digest, a connection cut mid-blob, auth challenges, 500s.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export async function fakeRegistry(handler: Handler): Promise<{ hostPort: string; close(): Promise<void> }> {
	const srv = createServer(handler);
	await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
	const port = (srv.address() as AddressInfo).port;
	return {
		hostPort: `127.0.0.1:${port}`,
		close: () =>
			new Promise((r) => {
				srv.closeAllConnections();
				srv.close(() => r());
			}),
	};
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
	const b = Buffer.from(JSON.stringify(body));
	res.writeHead(status, { "content-type": "application/json", "content-length": b.length, ...headers });
	res.end(b);
}
