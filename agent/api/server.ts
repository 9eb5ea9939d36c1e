// The agent's local API: HTTP/JSON over a unix socket, which the CLI (tsswarm init/join/node ...)
// talks to. Root only: the socket lives in its own 0700 directory from the moment it exists, bodies
// are bounded, and errors map to HTTP statuses by class (see README.md).
import { chmodSync, lstatSync, mkdirSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { dirname } from "node:path";
import pino from "pino";
import {
	BodyTooLargeError,
	InvalidBodyError,
	isNamedError,
	NoSuchRouteError,
	SocketDirError,
	statusOf,
} from "../errors.ts";

/**
 * A route answers with a value (one JSON body) or an async iterable (NDJSON: one line per item,
 * ended when the iterable is; `signal` aborts when the client goes away).
 */
export type Route = (body: Record<string, unknown>, ctx: { signal: AbortSignal }) => Promise<unknown> | unknown;

const isStream = (v: unknown): v is AsyncIterable<unknown> => !!v && typeof v === "object" && Symbol.asyncIterator in v;

export interface ControlServerOptions {
	/** Largest request body read, in bytes (default 1 MiB); a larger one is answered 413 unread. */
	maxBodyBytes?: number;
	/** Where errors that are bugs (answered 500) are logged; default pino on stderr. */
	logger?: Pick<pino.Logger, "error">;
}

export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

export class ControlServer {
	/** The HTTP server; exposed so tests can watch its events. */
	readonly server: Server;
	private readonly path: string;
	private readonly maxBodyBytes: number;
	private readonly log: Pick<pino.Logger, "error">;

	/** `path`'s directory is the socket's own: it is made (or kept) 0700 and owned by this user. */
	constructor(path: string, routes: Record<string, Route>, o: ControlServerOptions = {}) {
		this.path = path;
		this.maxBodyBytes = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
		this.log = o.logger ?? pino(pino.destination(2));
		this.server = createServer((req, res) => void this.dispatch(routes, req, res));
	}

	private async dispatch(routes: Record<string, Route>, req: IncomingMessage, res: ServerResponse): Promise<void> {
		const reply = (status: number, body: unknown, close = false) => {
			const b = JSON.stringify(body);
			res.writeHead(status, {
				"content-type": "application/json",
				"content-length": Buffer.byteLength(b),
				...(close ? { connection: "close" } : {}),
			});
			res.end(b);
		};
		const fail = (err: Error & { code: string }, close = false) =>
			reply(statusOf(err), { error: err.message, code: err.code }, close);
		const route = routes[`${req.method} ${req.url}`];
		if (!route) return fail(new NoSuchRouteError(req.method ?? "?", req.url ?? "?"));
		let body: Record<string, unknown>;
		try {
			body = await this.readBody(req);
		} catch (err) {
			if (!(err instanceof BodyTooLargeError)) return fail(err as InvalidBodyError);
			// Unread bytes may follow: answer, then drop the connection instead of reading them.
			fail(err, true);
			res.once("finish", () => req.socket.destroySoon());
			return;
		}
		const gone = new AbortController();
		res.once("close", () => gone.abort());
		try {
			const out = await route(body, { signal: gone.signal });
			if (isStream(out)) return await this.stream(req, res, out, gone.signal);
			reply(200, out);
		} catch (err) {
			if (isNamedError(err)) return fail(err);
			this.log.error({ err, route: `${req.method} ${req.url}` }, "local API: unexpected error");
			reply(500, { error: `internal error in the agent on ${req.url} (details in its log)`, code: "ERR_INTERNAL" });
		}
	}

	/**
	 * NDJSON: each item a line, written as the client takes them. An error after the first line
	 * cannot change the status any more: it is the last line, `{"error", "code"}`.
	 */
	private async stream(
		req: IncomingMessage,
		res: ServerResponse,
		items: AsyncIterable<unknown>,
		gone: AbortSignal,
	): Promise<void> {
		res.writeHead(200, { "content-type": "application/x-ndjson" });
		res.flushHeaders();
		const it = items[Symbol.asyncIterator]();
		try {
			for (;;) {
				const r = await it.next();
				if (r.done || gone.aborted) break;
				if (!res.write(`${JSON.stringify(r.value)}\n`))
					await new Promise<void>((resolve) => {
						const done = () => {
							res.off("drain", done).off("close", done);
							resolve();
						};
						res.once("drain", done).once("close", done);
					});
			}
		} catch (err) {
			const named = isNamedError(err);
			if (!named) this.log.error({ err, route: `${req.method} ${req.url}` }, "local API: unexpected error in a stream");
			if (!gone.aborted)
				res.write(
					`${JSON.stringify(
						named
							? { error: err.message, code: err.code }
							: { error: `internal error in the agent on ${req.url} (details in its log)`, code: "ERR_INTERNAL" },
					)}\n`,
				);
		} finally {
			if (gone.aborted) await it.return?.();
			res.end();
		}
	}

	/** The body as a JSON object (none: {}); stops reading at maxBodyBytes. */
	private async readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
		const max = this.maxBodyBytes;
		if (Number(req.headers["content-length"] ?? 0) > max) throw new BodyTooLargeError(max);
		const chunks: Buffer[] = [];
		let n = 0;
		await new Promise<void>((resolve, reject) => {
			const onData = (c: Buffer) => {
				n += c.length;
				if (n <= max) return void chunks.push(c);
				// Stop reading here (no async iterator: ending one would destroy the socket before the answer).
				req.pause();
				req.off("data", onData).off("end", resolve).off("error", reject);
				reject(new BodyTooLargeError(max));
			};
			req.on("data", onData).once("end", resolve).once("error", reject);
		});
		if (n === 0) return {};
		let v: unknown;
		try {
			v = JSON.parse(Buffer.concat(chunks).toString());
		} catch (err) {
			throw new InvalidBodyError((err as Error).message);
		}
		if (typeof v !== "object" || v === null || Array.isArray(v))
			throw new InvalidBodyError(`got ${Array.isArray(v) ? "a list" : v === null ? "null" : typeof v}`);
		return v as Record<string, unknown>;
	}

	async listen(): Promise<void> {
		const dir = dirname(this.path);
		privateDir(dir);
		rmSync(this.path, { force: true });
		// The directory already shuts others out; the socket is born 0600 too (umask), not chmod'ed later.
		const umask = process.umask(0o177);
		try {
			await new Promise<void>((resolve, reject) => {
				this.server.once("error", reject);
				this.server.listen(this.path, () => {
					this.server.off("error", reject);
					resolve();
				});
				// listen() binds synchronously: the socket exists now, so the umask can go back.
				process.umask(umask);
			});
		} finally {
			process.umask(umask);
		}
		chmodSync(this.path, 0o600);
	}

	async close(): Promise<void> {
		const closed = new Promise<void>((r) => this.server.close(() => r()));
		this.server.closeAllConnections(); // a client stuck mid-request must not hold the agent's stop
		await closed;
		rmSync(this.path, { force: true });
	}
}

/**
 * Makes `dir` a directory only this user can enter: created 0700 (never wider, whatever the umask),
 * or, if it exists, checked to be a real directory owned by this user and narrowed to 0700.
 */
function privateDir(dir: string): void {
	const uid = process.geteuid?.() ?? 0;
	mkdirSync(dir, { recursive: true, mode: 0o700 });
	const st = lstatSync(dir);
	if (!st.isDirectory()) throw new SocketDirError(dir, "it is not a directory (a symlink or a file)");
	if (st.uid !== uid) throw new SocketDirError(dir, `it is owned by uid ${st.uid}, not by this user (uid ${uid})`);
	if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}
