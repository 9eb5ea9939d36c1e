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
import { type CompiledRoute, match } from "./route.ts";
import type { Method, StreamError } from "./types.ts";

const isAsyncIterable = (v: unknown): v is AsyncIterable<unknown> =>
	typeof (v as { [Symbol.asyncIterator]?: unknown } | null)?.[Symbol.asyncIterator] === "function";

/** A handler of the untyped form (the body as it came): kept for tests and routes not yet typed. */
export type Route = (body: Record<string, unknown>, ctx: { signal: AbortSignal }) => Promise<unknown> | unknown;

export interface ControlServerOptions {
	/** Largest request body read, in bytes (default 1 MiB); a larger one is answered 413 unread. */
	maxBodyBytes?: number;
	/** Where errors that are bugs (answered 500) are logged; default pino on stderr. */
	logger?: Pick<pino.Logger, "error">;
}

export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

/**
 * Untyped routes ({"POST /v1/x": (body) => ...}) as compiled ones: exact paths, any body, no
 * checks. For routes not typed yet; a typed route (routes.ts) is the way to add one.
 */
export function untypedRoutes(table: Record<string, Route>): CompiledRoute[] {
	return Object.entries(table).map(([key, fn]) => {
		const [method, path] = key.split(" ") as [Method, string];
		return {
			key,
			method,
			segments: path.split("/").slice(1),
			stream: false,
			checkBody: (v) => v as Record<string, unknown>,
			checkQuery: (v) => v as Record<string, string>,
			handler: (req) => fn(req.body as Record<string, unknown>, { signal: req.signal }),
		};
	});
}

export class ControlServer {
	/** The HTTP server; exposed so tests can watch its events. */
	readonly server: Server;
	private readonly path: string;
	private readonly maxBodyBytes: number;
	private readonly log: Pick<pino.Logger, "error">;
	private readonly table: readonly CompiledRoute[];

	/**
	 * `path`'s directory is the socket's own: it is made (or kept) 0700 and owned by this user.
	 * `routes`: typed ones (routes<ApiRoutes>()(...), see routes.ts) or an untyped table.
	 */
	constructor(path: string, routes: readonly CompiledRoute[] | Record<string, Route>, o: ControlServerOptions = {}) {
		this.path = path;
		this.maxBodyBytes = o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
		this.log = o.logger ?? pino(pino.destination(2));
		this.table = Array.isArray(routes) ? routes : untypedRoutes(routes as Record<string, Route>);
		this.server = createServer((req, res) => void this.dispatch(req, res));
	}

	private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
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
		const url = new URL(req.url ?? "/", "http://local");
		const found = match(this.table, req.method ?? "", url.pathname);
		if (!found) return fail(new NoSuchRouteError(req.method ?? "?", url.pathname));
		const { route, params } = found;
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
		// The client going away (or the server closing) ends what the handler does for it.
		const gone = new AbortController();
		res.once("close", () => gone.abort());
		try {
			const input = {
				params,
				body: route.checkBody(body),
				query: route.checkQuery(Object.fromEntries(url.searchParams)),
				signal: gone.signal,
			};
			const out = await route.handler(input);
			// An untyped route streams by returning an async iterable.
			if (!route.stream && !isAsyncIterable(out)) return reply(200, out);
			if (!isAsyncIterable(out)) throw new TypeError(`${route.key} is a stream route and returned no async iterable`);
			await this.stream(res, out, gone.signal, route.key);
		} catch (err) {
			if (res.headersSent) return;
			if (isNamedError(err)) return fail(err);
			this.log.error({ err, route: route.key }, "local API: unexpected error");
			reply(500, { error: `internal error in the agent on ${route.key} (details in its log)`, code: "ERR_INTERNAL" });
		}
	}

	/**
	 * Writes `items` as NDJSON, one line each, waiting for the client to read (backpressure). A
	 * failure after the first byte becomes a last `{"$error": ...}` line; the client leaving stops
	 * the producer (its signal fires and the iterator is returned, so its finally blocks run).
	 */
	private async stream(res: ServerResponse, items: AsyncIterable<unknown>, gone: AbortSignal, key: string) {
		res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
		res.flushHeaders();
		const it = items[Symbol.asyncIterator]();
		let finished = false;
		try {
			for (;;) {
				const r = await it.next();
				if (r.done) {
					finished = true;
					break;
				}
				if (gone.aborted) break;
				if (!res.write(`${JSON.stringify(r.value)}\n`))
					await new Promise<void>((resolve) => {
						const done = () => {
							res.off("drain", done).off("close", done);
							resolve();
						};
						res.on("drain", done).on("close", done);
					});
				if (gone.aborted) break;
			}
		} catch (err) {
			finished = true;
			if (gone.aborted) return;
			const named = isNamedError(err);
			if (!named) this.log.error({ err, route: key }, "local API: unexpected error in a stream");
			const line: StreamError = {
				$error: named
					? { message: err.message, code: err.code, status: statusOf(err) }
					: {
							message: `internal error in the agent on ${key} (details in its log)`,
							code: "ERR_INTERNAL",
							status: 500,
						},
			};
			res.write(`${JSON.stringify(line)}\n`);
		} finally {
			if (!finished) await it.return?.();
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
