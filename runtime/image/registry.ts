// An OCI distribution (registry v2) client: manifests and blobs, anonymous, basic and bearer-token
// auth (from WWW-Authenticate), every byte digest-verified while it streams, nothing partial left.
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, existsSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { digestHex } from "./digest.ts";
import { DigestMismatchError, ImageNotFoundError, RegistryError } from "./errors.ts";
import { type HttpResponse, httpGet } from "./https.ts";
import type { Reference } from "./reference.ts";

export const MEDIA = {
	ociIndex: "application/vnd.oci.image.index.v1+json",
	ociManifest: "application/vnd.oci.image.manifest.v1+json",
	dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
	dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
	ociConfig: "application/vnd.oci.image.config.v1+json",
	dockerConfig: "application/vnd.docker.container.image.v1+json",
} as const;

export const LAYER_TYPES: Record<string, "gzip" | "zstd" | "none"> = {
	"application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
	"application/vnd.oci.image.layer.v1.tar": "none",
	"application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
	"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
};

export interface RegistryOptions {
	/** Registries reached over plain http (localhost and 127.0.0.0/8 always are). */
	insecureRegistries?: string[];
	credentials?: Record<string, { username: string; password: string }>;
	/** Per-registry CAs as Docker's certs.d: DIR/HOST:PORT/*.crt (besides the system store). */
	certsDir?: string;
	/** More trusted CAs (PEM), for every registry. */
	extraCAs?: string[];
}

export interface FetchedManifest {
	mediaType: string;
	digest: string;
	bytes: Buffer;
	json: Record<string, unknown>;
}

export const sha256 = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export class RegistryClient {
	private readonly insecure: Set<string>;
	private readonly creds: Record<string, { username: string; password: string }>;
	private readonly tokens = new Map<string, string>();
	private readonly tls: { certsDir?: string; extraCAs?: string[] };

	constructor(o: RegistryOptions = {}) {
		this.insecure = new Set(o.insecureRegistries ?? []);
		this.creds = o.credentials ?? {};
		this.tls = { certsDir: o.certsDir, extraCAs: o.extraCAs };
	}

	private base(registry: string): string {
		const host = registry.replace(/:\d+$/, "");
		// Loopback is plain http, as in Docker, unless certs.d holds a CA for it (then it speaks TLS).
		const hasCA = this.tls.certsDir !== undefined && existsSync(join(this.tls.certsDir, registry));
		const plain =
			this.insecure.has(registry) || (!hasCA && (host === "localhost" || /^127\./.test(host) || host === "[::1]"));
		return `${plain ? "http" : "https"}://${registry}`;
	}

	/** GET with auth: on 401 follow the challenge (Bearer token or Basic) once and retry. */
	private async get(ref: Reference, path: string, accept: string, signal?: AbortSignal): Promise<HttpResponse> {
		const url = `${this.base(ref.registry)}/v2/${ref.repository}/${path}`;
		const key = `${ref.registry}/${ref.repository}`;
		const headers: Record<string, string> = { accept };
		const token = this.tokens.get(key);
		if (token) headers.authorization = token;
		let res = await this.fetch(url, headers, signal);
		if (res.status === 401) {
			const challenge = res.header("www-authenticate") ?? "";
			res.discard();
			const auth = await this.authorize(ref, challenge, signal);
			this.tokens.set(key, auth);
			res = await this.fetch(url, { ...headers, authorization: auth }, signal);
		}
		return res;
	}

	private async fetch(url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<HttpResponse> {
		try {
			return await httpGet(url, headers, { signal, ...this.tls });
		} catch (err) {
			if (signal?.aborted) throw err;
			const code = (err as { code?: string }).code ?? "";
			if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code))
				throw new RegistryError(
					`cannot verify ${new URL(url).host}'s TLS certificate (${code}): put its CA in certs.d/${new URL(url).host}/ca.crt under the data root, or list it as an insecure registry`,
					0,
					"ERR_REGISTRY_TLS",
				);
			throw new RegistryError(
				`cannot reach ${new URL(url).host}: ${(err as Error).cause ?? (err as Error).message}`,
				0,
				"ERR_REGISTRY_UNREACHABLE",
			);
		}
	}

	private async authorize(ref: Reference, challenge: string, signal?: AbortSignal): Promise<string> {
		const cred = this.creds[ref.registry];
		const scheme = challenge.split(" ")[0]?.toLowerCase();
		const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
		if (scheme === "basic") {
			if (!cred) throw new RegistryError(`${ref.registry} requires credentials`, 401, "ERR_REGISTRY_AUTH");
			return `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString("base64")}`;
		}
		if (scheme !== "bearer" || !params.realm) {
			throw new RegistryError(
				`${ref.registry} sent an unusable auth challenge: ${challenge || "(none)"}`,
				401,
				"ERR_REGISTRY_AUTH",
			);
		}
		const u = new URL(params.realm);
		if (params.service) u.searchParams.set("service", params.service);
		u.searchParams.set("scope", params.scope ?? `repository:${ref.repository}:pull`);
		const headers: Record<string, string> = {};
		if (cred) headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString("base64")}`;
		const res = await this.fetch(u.toString(), headers, signal);
		if (!res.ok) res.discard();
		if (!res.ok)
			throw new RegistryError(`token request to ${u.host} failed: HTTP ${res.status}`, res.status, "ERR_REGISTRY_AUTH");
		const body = (await res.json()) as { token?: string; access_token?: string };
		const tok = body.token ?? body.access_token;
		if (!tok) throw new RegistryError(`token response from ${u.host} has no token`, res.status, "ERR_REGISTRY_AUTH");
		return `Bearer ${tok}`;
	}

	private fail(ref: Reference, what: string, res: HttpResponse): never {
		res.discard();
		if (res.status === 404) throw new ImageNotFoundError(ref.canonical, `(${what}: 404 from ${ref.registry})`);
		if (res.status === 401 || res.status === 403)
			throw new RegistryError(
				`${what}: access denied by ${ref.registry} (HTTP ${res.status})`,
				res.status,
				"ERR_REGISTRY_AUTH",
			);
		throw new RegistryError(`${what}: HTTP ${res.status} from ${ref.registry}`, res.status);
	}

	async manifest(ref: Reference, reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
		if (reference.startsWith("sha256:")) digestHex(reference, `manifest of ${ref.canonical}`);
		const accept = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest].join(", ");
		const res = await this.get(ref, `manifests/${reference}`, accept, signal);
		if (!res.ok) this.fail(ref, `manifest ${reference}`, res);
		const bytes = await res.bytes(4 << 20);
		if (bytes.length > 4 << 20)
			throw new RegistryError(`manifest ${reference} is larger than 4 MiB`, res.status, "ERR_MANIFEST_TOO_LARGE");
		const digest = sha256(bytes);
		if (reference.startsWith("sha256:") && digest !== reference)
			throw new DigestMismatchError(`manifest of ${ref.canonical}`, reference, digest);
		let json: Record<string, unknown>;
		try {
			json = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
		} catch {
			throw new RegistryError(`manifest ${reference} of ${ref.canonical} is not JSON`, res.status, "ERR_BAD_MANIFEST");
		}
		const mediaType = String(json.mediaType ?? res.header("content-type") ?? "");
		return { mediaType, digest, bytes, json };
	}

	/** Streams a blob into `dest` (via a temp file), verifying its digest; returns its size. */
	async blob(
		ref: Reference,
		digest: string,
		dest: string,
		o: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
	): Promise<number> {
		digestHex(digest, `blob of ${ref.canonical}`);
		const res = await this.get(ref, `blobs/${digest}`, "*/*", o.signal);
		if (!res.ok || !res.body) this.fail(ref, `blob ${digest}`, res);
		// Unique per call: two pulls (or workers) may fetch the same blob at once.
		const tmp = `${dest}.partial-${process.pid}-${randomBytes(4).toString("hex")}`;
		const out = createWriteStream(tmp, { mode: 0o600 });
		const hash = createHash("sha256");
		let size = 0;
		try {
			for await (const chunk of res.body as AsyncIterable<Buffer>) {
				hash.update(chunk);
				size += chunk.length;
				o.onBytes?.(chunk.length);
				if (!out.write(chunk)) await once(out, "drain");
			}
			out.end();
			await once(out, "close");
		} catch (err) {
			out.destroy();
			rmSync(tmp, { force: true });
			if (o.signal?.aborted) throw err;
			throw new RegistryError(
				`blob ${digest} from ${ref.registry}: connection lost after ${size} bytes (${(err as Error).message})`,
				0,
				"ERR_REGISTRY_DROPPED",
			);
		}
		const got = `sha256:${hash.digest("hex")}`;
		if (got !== digest) {
			rmSync(tmp, { force: true });
			throw new DigestMismatchError(`blob of ${ref.canonical}`, digest, got);
		}
		renameSync(tmp, dest);
		return size;
	}
}
