// HTTP(S) for registries, on node:http and node:https: the machine's CA store plus per-registry CAs,
// the way Docker reads /etc/docker/certs.d/HOST:PORT/*.crt (here a certs.d dir under the data root).
// Not fetch: Node's fetch, Response and Headers load undici, +15 MB RSS for the life of an agent
// whose worker ever pulled (bench/agent-rss); nothing process-wide (CAs, NODE_EXTRA_CA_CERTS) changes.
// node:https and node:tls load on first use: `tsswarm run` of a local image needs neither.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import type { SecureContext } from "node:tls";

/** Node's bundled roots, the system store (/etc/ssl/certs), and any extra PEMs. */
function caFor(host: string, o: { certsDir?: string; extraCAs?: string[] }): string[] {
	const { getCACertificates } = process.getBuiltinModule("node:tls");
	return [...new Set([...getCACertificates("default"), ...getCACertificates("system"), ...extraCAs(host, o)])];
}

/** The PEMs beyond the machine's roots: certs.d/HOST:PORT/*.crt (read at each call), then extraCAs. */
function extraCAs(host: string, o: { certsDir?: string; extraCAs?: string[] }): string[] {
	const out = [...(o.extraCAs ?? [])];
	const dir = o.certsDir ? join(o.certsDir, host.replaceAll("/", "_")) : undefined;
	if (dir && existsSync(dir))
		for (const f of readdirSync(dir).sort()) if (f.endsWith(".crt")) out.push(readFileSync(join(dir, f), "utf8"));
	return out;
}

/**
 * One TLS context per registry host and CA set, reused by every request: a context of ~270 roots
 * built per request costs ~1.5 MB of native memory that stays (each task's pull made one: most of
 * bench/agent-rss's per-task growth). A changed certs.d makes a new one.
 */
const contexts = new Map<string, { key: string; ctx: SecureContext }>();
function secureContextFor(host: string, o: { certsDir?: string; extraCAs?: string[] }): SecureContext {
	const key = extraCAs(host, o).join("\n");
	const had = contexts.get(host);
	if (had?.key === key) return had.ctx;
	const ctx = process.getBuiltinModule("node:tls").createSecureContext({ ca: caFor(host, o) });
	contexts.set(host, { key, ctx });
	return ctx;
}

/** What the registry client reads of a response. */
export interface HttpResponse {
	status: number;
	/** 2xx. */
	ok: boolean;
	header(name: string): string | undefined;
	/** The body: an async iterable of Buffers (null for 204 and 304). */
	body: IncomingMessage | null;
	/** Drops the body unread. */
	discard(): void;
	/** The whole body, reading at most `max` + 1 bytes (so a caller can tell it was longer). */
	bytes(max: number): Promise<Buffer>;
	/** The body as JSON (at most 1 MiB). */
	json(): Promise<unknown>;
}

/** GET url, following up to 5 redirects (blob stores often redirect); auth is not sent to another host. */
export async function httpGet(
	url: string,
	headers: Record<string, string>,
	o: { signal?: AbortSignal; certsDir?: string; extraCAs?: string[] },
): Promise<HttpResponse> {
	let u = new URL(url);
	let h = { ...headers };
	for (let hop = 0; hop < 6; hop++) {
		const tls = u.protocol === "https:" ? secureContextFor(u.host, o) : undefined;
		const res = await once(u, h, tls, o.signal);
		const loc = res.header("location");
		if (res.status < 300 || res.status >= 400 || !loc) return res;
		res.discard();
		const next = new URL(loc, u);
		if (next.host !== u.host) delete h.authorization;
		u = next;
		h = { ...h };
	}
	throw new Error(`too many redirects from ${url}`);
}

async function once(
	u: URL,
	headers: Record<string, string>,
	secureContext: SecureContext | undefined,
	signal?: AbortSignal,
): Promise<HttpResponse> {
	if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error(`unsupported URL scheme in ${u.href}`);
	// getBuiltinModule, not import(): an ES import of node:http(s) builds its namespace, which loads undici.
	const { request } = secureContext ? process.getBuiltinModule("node:https") : process.getBuiltinModule("node:http");
	return new Promise((resolve, reject) => {
		const req = request(u, { method: "GET", headers, ...(secureContext ? { secureContext } : {}), signal }, (res) => {
			const status = res.statusCode ?? 0;
			const body = status === 204 || status === 304 ? null : res;
			if (!body) res.resume();
			const bytes = async (max: number) => {
				const chunks: Buffer[] = [];
				let n = 0;
				if (body)
					for await (const c of body as AsyncIterable<Buffer>) {
						chunks.push(c);
						n += c.length;
						if (n > max) {
							body.destroy();
							break;
						}
					}
				return Buffer.concat(chunks);
			};
			resolve({
				status,
				ok: status >= 200 && status < 300,
				header: (name) => {
					const v = res.headers[name.toLowerCase()];
					return Array.isArray(v) ? v.join(", ") : v;
				},
				body,
				discard: () => {
					res.resume();
					res.destroy();
				},
				bytes,
				json: async () => JSON.parse((await bytes(1 << 20)).toString("utf8")) as unknown,
			});
		});
		req.once("error", reject);
		req.end();
	});
}
