// The CLI's side of the local API: every failure comes back as an ApiError with the agent's `code`,
// a message that says what to do, and the exit code the CLI ends with.
import { request } from "node:http";
import { join } from "node:path";
import { ApiError } from "../errors.ts";

/** The socket, in its own 0700 directory under the data root. */
export const socketPath = (dataRoot: string) => join(dataRoot, "api", "tsswarm.sock");

export function call<T>(
	dataRoot: string,
	method: "GET" | "POST",
	path: string,
	body?: unknown,
	timeoutMs = 30_000,
): Promise<T> {
	const data = body === undefined ? undefined : JSON.stringify(body);
	const sock = socketPath(dataRoot);
	return new Promise((resolve, reject) => {
		let answered = false;
		const req = request(
			{
				socketPath: sock,
				method,
				path,
				headers: data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {},
				timeout: timeoutMs,
			},
			(res) => {
				answered = true;
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
					if (status === 200) return resolve(j as T);
					reject(replyError(path, status, j));
				});
			},
		);
		req.on("timeout", () =>
			req.destroy(new ApiError(`the agent did not answer ${path} in time`, "ERR_CONTROL_TIMEOUT")),
		);
		req.on("error", (err: NodeJS.ErrnoException) => {
			// The agent may close the connection after answering (an oversized body): the answer counts.
			if (answered) return;
			if (err instanceof ApiError) reject(err);
			else if (err.code === "ENOENT" || err.code === "ECONNREFUSED")
				reject(
					new ApiError(
						`no agent is running with data root ${dataRoot} (start one with: tsswarm agent)`,
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

/**
 * A streaming route (NDJSON): `onItem` gets each line's value as it arrives; resolves when the
 * agent ends the stream, rejects with the agent's error (before or within the stream). No
 * timeout: a followed log lasts until `signal` aborts (then it resolves).
 */
export function callStream(
	dataRoot: string,
	path: string,
	body: unknown,
	onItem: (item: unknown) => void,
	o: { signal?: AbortSignal } = {},
): Promise<void> {
	const data = JSON.stringify(body ?? {});
	const sock = socketPath(dataRoot);
	return new Promise((resolve, reject) => {
		const req = request(
			{
				socketPath: sock,
				method: "POST",
				path,
				headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) },
			},
			(res) => {
				const status = res.statusCode ?? 0;
				let buf = "";
				let failed = false;
				const line = (l: string) => {
					if (!l || failed) return;
					let v: { error?: unknown; code?: unknown };
					try {
						v = JSON.parse(l) as typeof v;
					} catch {
						failed = true;
						return reject(new ApiError(`the agent sent ${path} a line that is not JSON`, "ERR_CONTROL", status));
					}
					if (status !== 200 || (typeof v.error === "string" && typeof v.code === "string")) {
						failed = true;
						return reject(replyError(path, status, v));
					}
					onItem(v);
				};
				res.setEncoding("utf8");
				res.on("data", (c: string) => {
					buf += c;
					let nl = buf.indexOf("\n");
					while (nl >= 0) {
						line(buf.slice(0, nl));
						buf = buf.slice(nl + 1);
						nl = buf.indexOf("\n");
					}
				});
				res.on("error", (err) => (o.signal?.aborted ? resolve() : reject(err)));
				res.on("end", () => {
					line(buf);
					if (!failed) resolve();
				});
			},
		);
		o.signal?.addEventListener("abort", () => req.destroy(), { once: true });
		req.on("error", (err: NodeJS.ErrnoException) => {
			if (o.signal?.aborted) return resolve();
			if (err.code === "ENOENT" || err.code === "ECONNREFUSED")
				reject(
					new ApiError(
						`no agent is running with data root ${dataRoot} (start one with: tsswarm agent)`,
						"ERR_NO_AGENT",
					),
				);
			else reject(new ApiError(`talking to the agent at ${sock}: ${err.message}`, "ERR_CONTROL"));
		});
		req.end(data);
	});
}

/** The agent's error reply ({error, code}) as an ApiError. */
function replyError(path: string, status: number, j: { error?: unknown; code?: unknown }): ApiError {
	const message = typeof j.error === "string" ? j.error : `the agent answered ${path} with HTTP ${status}`;
	return new ApiError(message, typeof j.code === "string" ? j.code : "ERR_CONTROL", status);
}
