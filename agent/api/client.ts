// The CLI's side of the local API: ApiClient calls the routes of the shared table (types.ts) by
// key, typed; streams come back as async iterators. Every failure is an ApiError with the agent's
// `code`, a message that says what to do, and the exit code the CLI ends with.
import { type IncomingMessage, request } from "node:http";
import { join } from "node:path";
import { ApiError } from "../errors.ts";
import type {
	ApiRoutes,
	ItemOf,
	Method,
	RequestOf,
	ResponseOf,
	StreamError,
	StreamRoute,
	UnaryRoute,
} from "./types.ts";

export { ApiError };

/** The socket, in its own 0700 directory under the data root. */
export const socketPath = (dataRoot: string) => join(dataRoot, "api", "tsswarm.sock");

/** What a call may take: path parameters, body, query (as the route's entry says). */
type Args<K extends keyof R & string, R> =
	Record<never, never> extends RequestOf<K, R>
		? [req?: RequestOf<K, R>, o?: CallOptions]
		: [req: RequestOf<K, R>, o?: CallOptions];

export interface CallOptions {
	/** Unary calls: how long the agent may take to answer (default 30 s). Streams have none. */
	timeoutMs?: number;
	signal?: AbortSignal;
}

export interface ApiClientOptions {
	/** Named in "no agent" errors: the data root the socket was derived from. */
	dataRoot?: string;
}

export class ApiClient<R = ApiRoutes> {
	readonly socket: string;
	private readonly dataRoot: string | undefined;

	constructor(socket: string, o: ApiClientOptions = {}) {
		this.socket = socket;
		this.dataRoot = o.dataRoot;
	}

	/** The agent whose data root is `dataRoot`. */
	static forDataRoot<R = ApiRoutes>(dataRoot: string): ApiClient<R> {
		return new ApiClient<R>(socketPath(dataRoot), { dataRoot });
	}

	/** Calls a unary route: `client.call("GET /v1/networks/:ref", { params: { ref } })`. */
	async call<K extends UnaryRoute<R>>(key: K, ...[req, o]: Args<K, R>): Promise<ResponseOf<K, R>> {
		const { method, path } = target(key, req);
		const body = (req as { body?: unknown } | undefined)?.body;
		const res = await this.send(method, path, body, o?.timeoutMs ?? 30_000, o?.signal);
		return (await readJson(res, path)) as ResponseOf<K, R>;
	}

	/**
	 * Calls a stream route: its items as they come (`for await`). Leaving the loop (or aborting
	 * `signal`) closes the connection, which stops the agent's producer.
	 */
	async *stream<K extends StreamRoute<R>>(key: K, ...[req, o]: Args<K, R>): AsyncGenerator<ItemOf<K, R>> {
		const { method, path } = target(key, req);
		const body = (req as { body?: unknown } | undefined)?.body;
		const res = await this.send(method, path, body, 0, o?.signal);
		for await (const v of ndjson(res, path, o?.signal)) yield v as ItemOf<K, R>;
	}

	private send(method: Method, path: string, body: unknown, timeoutMs: number, signal?: AbortSignal) {
		return send(this.socket, this.dataRoot, method, path, body, timeoutMs, signal);
	}
}

/** An NDJSON answer's items; a `{"$error"}` line or a cut stream is an ApiError. */
async function* ndjson(res: IncomingMessage, path: string, signal?: AbortSignal): AsyncGenerator<unknown> {
	if (res.statusCode !== 200) return void (await readJson(res, path));
	let rest = "";
	let ended = false;
	res.once("end", () => {
		ended = true;
	});
	try {
		for await (const chunk of res as AsyncIterable<Buffer>) {
			const lines = (rest + chunk.toString()).split("\n");
			rest = lines.pop()!;
			for (const line of lines) {
				if (line === "") continue;
				const v = parseLine(line, path);
				if (isStreamError(v)) throw new ApiError(v.$error.message, v.$error.code, v.$error.status);
				yield v;
			}
		}
	} catch (err) {
		if (signal?.aborted) throw signal.reason;
		if (err instanceof ApiError) throw err;
		throw new ApiError(`the agent's stream ${path} broke off: ${(err as Error).message}`, "ERR_STREAM_CUT");
	} finally {
		res.destroy();
	}
	if (!ended || rest !== "")
		throw new ApiError(`the agent's stream ${path} ended in the middle (is the agent stopping?)`, "ERR_STREAM_CUT");
}

/**
 * An untyped streaming POST (NDJSON): `onItem` gets each item as it comes; resolves when the
 * stream ends, or quietly when `signal` aborts (a followed log lasts until then).
 */
export async function callStream(
	dataRoot: string,
	path: string,
	body: unknown,
	onItem: (item: unknown) => void,
	o: { signal?: AbortSignal } = {},
): Promise<void> {
	try {
		const res = await send(socketPath(dataRoot), dataRoot, "POST", path, body ?? {}, 0, o.signal);
		for await (const v of ndjson(res, path, o.signal)) onItem(v);
	} catch (err) {
		if (o.signal?.aborted) return;
		throw err;
	}
}

/** One request; resolves with the response once its headers are in. */
function send(
	sock: string,
	dataRoot: string | undefined,
	method: Method,
	path: string,
	body: unknown,
	timeoutMs: number,
	signal?: AbortSignal,
): Promise<IncomingMessage> {
	const data = body === undefined ? undefined : JSON.stringify(body);
	return new Promise((resolve, reject) => {
		let answered = false;
		const req = request(
			{
				socketPath: sock,
				method,
				path,
				headers: data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {},
				timeout: timeoutMs,
				signal,
			},
			(res) => {
				answered = true;
				res.socket.setTimeout(0); // the agent answered; a stream may be quiet for long
				resolve(res);
			},
		);
		req.on("timeout", () =>
			req.destroy(new ApiError(`the agent did not answer ${path} in time`, "ERR_CONTROL_TIMEOUT")),
		);
		req.on("error", (err: NodeJS.ErrnoException) => {
			// The agent may close the connection after answering (an oversized body): the answer counts.
			if (answered) return;
			if (err instanceof ApiError) reject(err);
			else if (err.name === "AbortError") reject(err);
			else if (err.code === "ENOENT" || err.code === "ECONNREFUSED")
				reject(
					new ApiError(
						dataRoot !== undefined
							? `no agent is running with data root ${dataRoot} (start one with: tsswarm agent)`
							: `no agent is listening on unix://${sock} (start one with: tsswarm agent)`,
						"ERR_NO_AGENT",
					),
				);
			else if (err.code === "EACCES")
				reject(
					new ApiError(
						`permission denied on the agent's socket ${sock}: the local API is for root only`,
						"ERR_NO_ACCESS",
					),
				);
			else reject(new ApiError(`talking to the agent at ${sock}: ${err.message}`, "ERR_CONTROL"));
		});
		req.end(data);
	});
}

/** The untyped call (method, path, body) on the agent of `dataRoot`; typed code uses ApiClient. */
export async function call<T>(
	dataRoot: string,
	method: Method,
	path: string,
	body?: unknown,
	timeoutMs = 30_000,
): Promise<T> {
	return (await readJson(await send(socketPath(dataRoot), dataRoot, method, path, body, timeoutMs), path)) as T;
}

/** The method and the path (parameters filled in, query appended) of route `key`. */
function target(key: string, req: unknown): { method: Method; path: string } {
	const r = (req ?? {}) as { params?: Record<string, string>; query?: Record<string, string | undefined> };
	const i = key.indexOf(" ");
	const path = key.slice(i + 1).replace(/:([A-Za-z_]\w*)/g, (_, name: string) => {
		const v = r.params?.[name];
		if (v === undefined || v === "") throw new ApiError(`${key}: parameter ${name} is missing`, "ERR_USAGE");
		return encodeURIComponent(v);
	});
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(r.query ?? {})) if (v !== undefined) q.set(k, v);
	const qs = q.toString();
	return { method: key.slice(0, i) as Method, path: qs ? `${path}?${qs}` : path };
}

/** A unary answer: its JSON on 200, else the agent's error as an ApiError. */
function readJson(res: IncomingMessage, path: string): Promise<unknown> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		res.on("data", (c: Buffer) => chunks.push(c));
		res.on("error", reject);
		res.on("end", () => {
			const status = res.statusCode ?? 0;
			let j: { error?: unknown; code?: unknown };
			try {
				j = JSON.parse(Buffer.concat(chunks).toString()) as typeof j;
			} catch {
				return reject(
					new ApiError(`the agent answered ${path} with HTTP ${status} and no JSON`, "ERR_CONTROL", status),
				);
			}
			if (status === 200) return resolve(j);
			const message = typeof j.error === "string" ? j.error : `the agent answered ${path} with HTTP ${status}`;
			reject(new ApiError(message, typeof j.code === "string" ? j.code : "ERR_CONTROL", status));
		});
	});
}

function parseLine(line: string, path: string): unknown {
	try {
		return JSON.parse(line);
	} catch {
		throw new ApiError(`the agent's stream ${path} sent a line that is not JSON`, "ERR_CONTROL");
	}
}

const isStreamError = (v: unknown): v is StreamError =>
	typeof v === "object" && v !== null && "$error" in v && typeof (v as StreamError).$error === "object";
