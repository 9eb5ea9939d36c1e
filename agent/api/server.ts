// The agent's local API: HTTP/JSON over a unix socket in the data root (root only, 0600),
// which the CLI (tsswarm init/join/node ...) talks to.
import { chmodSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export type Route = (body: Record<string, unknown>) => Promise<unknown> | unknown;

export class ControlServer {
	private readonly server: Server;
	private readonly path: string;

	constructor(path: string, routes: Record<string, Route>) {
		this.path = path;
		this.server = createServer((req, res) => void this.dispatch(routes, req, res));
	}

	private async dispatch(routes: Record<string, Route>, req: IncomingMessage, res: ServerResponse): Promise<void> {
		const route = routes[`${req.method} ${req.url}`];
		const reply = (status: number, body: unknown) => {
			const b = JSON.stringify(body);
			res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(b) });
			res.end(b);
		};
		if (!route) return reply(404, { error: `no such endpoint ${req.method} ${req.url}` });
		let body: Record<string, unknown> = {};
		try {
			const chunks: Buffer[] = [];
			for await (const c of req) chunks.push(c as Buffer);
			if (chunks.length) body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
		} catch {
			return reply(400, { error: "request body is not JSON" });
		}
		try {
			reply(200, await route(body));
		} catch (err) {
			const e = err as Error & { code?: string };
			reply(e.code === "ERR_USAGE" || e.code === "ERR_INVALID_TOKEN" ? 400 : 500, { error: e.message, code: e.code });
		}
	}

	async listen(): Promise<void> {
		rmSync(this.path, { force: true });
		await new Promise<void>((r) => this.server.listen(this.path, r));
		chmodSync(this.path, 0o600);
	}

	async close(): Promise<void> {
		await new Promise<void>((r) => this.server.close(() => r()));
		rmSync(this.path, { force: true });
	}
}
