// The CLI's side of the control API.
import { request } from "node:http";
import { join } from "node:path";
import { AgentError } from "../errors.ts";

export const socketPath = (dataRoot: string) => join(dataRoot, "tsswarm.sock");

export function call<T>(
	dataRoot: string,
	method: "GET" | "POST",
	path: string,
	body?: unknown,
	timeoutMs = 30_000,
): Promise<T> {
	const data = body === undefined ? undefined : JSON.stringify(body);
	return new Promise((resolve, reject) => {
		const req = request(
			{
				socketPath: socketPath(dataRoot),
				method,
				path,
				headers: data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {},
				timeout: timeoutMs,
			},
			(res) => {
				const chunks: Buffer[] = [];
				res.on("data", (c: Buffer) => chunks.push(c));
				res.on("end", () => {
					let j: { error?: string; code?: string };
					try {
						j = JSON.parse(Buffer.concat(chunks).toString()) as { error?: string };
					} catch {
						return reject(new AgentError("the agent sent a malformed answer", "ERR_CONTROL"));
					}
					if (res.statusCode === 200) resolve(j as T);
					else reject(new AgentError(j.error ?? `agent answered HTTP ${res.statusCode}`, j.code ?? "ERR_CONTROL"));
				});
			},
		);
		req.on("timeout", () =>
			req.destroy(new AgentError(`the agent did not answer ${path} in time`, "ERR_CONTROL_TIMEOUT")),
		);
		req.on("error", (err: NodeJS.ErrnoException) => {
			if (err.code === "ENOENT" || err.code === "ECONNREFUSED") {
				reject(
					new AgentError(
						`no agent is running with data root ${dataRoot} (start one with: tsswarm agent)`,
						"ERR_NO_AGENT",
					),
				);
			} else reject(err);
		});
		req.end(data);
	});
}
