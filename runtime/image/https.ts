// HTTPS for registries with the machine's CA store plus per-registry CAs, the way Docker reads
// /etc/docker/certs.d/HOST:PORT/*.crt (here a certs.d dir under the data root). Node's fetch cannot
// take a CA per request, so https goes through node:https and comes back as a fetch Response;
// nothing process-wide (the default CA list, NODE_EXTRA_CA_CERTS) is changed.
// node:https and node:tls load on first use: `tsswarm run` of a local image needs neither.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";

/** Node's bundled roots, the system store (/etc/ssl/certs), and any extra PEMs. */
export async function caFor(host: string, o: { certsDir?: string; extraCAs?: string[] }): Promise<string[]> {
	const { getCACertificates } = await import("node:tls");
	const cas = new Set([...getCACertificates("default"), ...getCACertificates("system"), ...(o.extraCAs ?? [])]);
	const dir = o.certsDir ? join(o.certsDir, host.replaceAll("/", "_")) : undefined;
	if (dir && existsSync(dir))
		for (const f of readdirSync(dir)) if (f.endsWith(".crt")) cas.add(readFileSync(join(dir, f), "utf8"));
	return [...cas];
}

/** GET url, following up to 5 redirects (blob stores often redirect); auth is not sent to another host. */
export async function httpsGet(
	url: string,
	headers: Record<string, string>,
	o: { signal?: AbortSignal; certsDir?: string; extraCAs?: string[] },
): Promise<Response> {
	let u = new URL(url);
	let h = { ...headers };
	for (let hop = 0; hop < 6; hop++) {
		const res = await once(u, h, await caFor(u.host, o), o.signal);
		const loc = res.headers.get("location");
		if (res.status < 300 || res.status >= 400 || !loc) return res;
		await res.body?.cancel();
		const next = new URL(loc, u);
		if (next.host !== u.host) delete h.authorization;
		if (next.protocol === "http:") return fetch(next, { headers: h, signal: o.signal, redirect: "follow" });
		u = next;
		h = { ...h };
	}
	throw new Error(`too many redirects from ${url}`);
}

async function once(u: URL, headers: Record<string, string>, ca: string[], signal?: AbortSignal): Promise<Response> {
	const { request } = await import("node:https");
	return new Promise((resolve, reject) => {
		const req = request(u, { method: "GET", headers, ca, signal }, (res) => {
			const h = new Headers();
			for (const [k, v] of Object.entries(res.headers)) {
				if (v === undefined) continue;
				for (const one of Array.isArray(v) ? v : [v]) h.append(k, one);
			}
			const status = res.statusCode ?? 0;
			const body = status === 204 || status === 304 ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
			resolve(new Response(body, { status, headers: h }));
		});
		req.once("error", reject);
		req.end();
	});
}
