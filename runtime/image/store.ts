// The image store: content-addressed blobs, unpacked layers, and image records by reference.
//
//   ROOT/blobs/sha256/<hex>      manifests, configs and compressed layers, digest-verified
//   ROOT/layers/<diffid hex>/    one unpacked layer, stackable as an overlay lowerdir
//   ROOT/images/<hex>.json       an image record (by manifest digest)
//   ROOT/refs.json               "ref|platform" -> manifest digest
// Everything lands under a temporary name and is renamed into place, so a crash or a bad blob
// never leaves partial content; prune() removes what no image references.
import { execFileSync } from "node:child_process";
import {
	closeSync,
	existsSync,
	mkdirSync,
	mkdtempSync,
	openSync,
	readdirSync,
	readFileSync,
	readSync,
	renameSync,
	rmSync,
	statSync,
	writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
	ImageError,
	ImageNotFoundError,
	InvalidReferenceError,
	PlatformNotFoundError,
	UnsupportedMediaTypeError,
} from "./errors.ts";
import {
	formatPlatform,
	hostPlatform,
	normalizePlatform,
	type Platform,
	parsePlatform,
	parseReference,
	platformMatches,
	type Reference,
} from "./reference.ts";
import { LAYER_TYPES, MEDIA, RegistryClient, type RegistryOptions, sha256 } from "./registry.ts";
import { type Compression, unpackLayer } from "./unpack.ts";

export interface ImageConfig {
	architecture?: string;
	os?: string;
	variant?: string;
	config?: {
		Env?: string[];
		Cmd?: string[];
		Entrypoint?: string[];
		WorkingDir?: string;
		User?: string;
		ExposedPorts?: Record<string, unknown>;
		Labels?: Record<string, string>;
		Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number };
	};
	rootfs?: { type: string; diff_ids: string[] };
}

export interface ImageRecord {
	/** The config digest: what `image ls` shows as the image id. */
	id: string;
	manifestDigest: string;
	refs: string[];
	platform: Platform;
	config: ImageConfig;
	layers: Array<{ digest: string; diffId: string; mediaType: string; size: number }>;
	created: string;
}

export interface ResolvedImage extends ImageRecord {
	/** Unpacked layer directories, bottom first. */
	layerDirs: string[];
}

export interface PullProgress {
	layer: string;
	status: "exists" | "downloading" | "extracting" | "done";
	current?: number;
	total?: number;
}

const hex = (d: string) => d.replace(/^sha256:/, "");

/** gzip, zstd or plain tar, by the file's magic bytes (docker save does not say). */
function sniffCompression(path: string): Compression {
	const fd = openSync(path, "r");
	const b = Buffer.alloc(4);
	try {
		readSync(fd, b, 0, 4, 0);
	} finally {
		closeSync(fd);
	}
	if (b[0] === 0x1f && b[1] === 0x8b) return "gzip";
	if (b.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return "zstd";
	return "none";
}

/**
 * The name of an image in an OCI layout. org.opencontainers.image.ref.name is a full reference
 * (containerd, "docker.io/library/busybox:latest"), or per the image spec often just a tag
 * ("latest", "1.36"), or, as skopeo's oci:DIR:NAME writes it, a bare name. A bare tag needs the
 * repository from the caller (image load --name); a bare name gets :latest.
 */
export function layoutRef(annotations: Record<string, string>, name: string | undefined, digest: string): string {
	const full = annotations["io.containerd.image.name"];
	if (full) return parseReference(full).canonical;
	const v = annotations["org.opencontainers.image.ref.name"];
	if (v && /[/:@]/.test(v)) return parseReference(v).canonical;
	if (name) return parseReference(`${name}:${v ?? "latest"}`).canonical;
	if (v === undefined) return parseReference(`sha256-${hex(digest).slice(0, 12)}:latest`).canonical;
	if (v === "latest" || /^v?\d/.test(v) || !/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(v))
		throw new ImageError(
			`the archive names an image only by the tag "${v}": give its repository (image load --name REPO)`,
			"ERR_NAME_REQUIRED",
		);
	return parseReference(`${v}:latest`).canonical;
}

/** The error that started a failure, not the aborts it caused in the other workers. */
function firstCause(results: PromiseSettledResult<unknown>[]): unknown {
	const errs = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason);
	return errs.find((e) => (e as Error)?.name !== "AbortError") ?? errs[0];
}

export class ImageStore {
	readonly root: string;
	private readonly client: RegistryClient;

	constructor(o: { root: string } & RegistryOptions) {
		this.root = o.root;
		this.client = new RegistryClient(o);
		for (const d of ["blobs/sha256", "layers", "images", "tmp"]) mkdirSync(join(this.root, d), { recursive: true });
	}

	private blobPath(digest: string): string {
		return join(this.root, "blobs", "sha256", hex(digest));
	}

	layerDir(diffId: string): string {
		return join(this.root, "layers", hex(diffId));
	}

	private refs(): Record<string, string> {
		try {
			return JSON.parse(readFileSync(join(this.root, "refs.json"), "utf8")) as Record<string, string>;
		} catch {
			return {};
		}
	}

	private saveRefs(refs: Record<string, string>): void {
		const tmp = join(this.root, `refs.json.${process.pid}`);
		writeFileSync(tmp, JSON.stringify(refs, null, 1));
		renameSync(tmp, join(this.root, "refs.json"));
	}

	private record(manifestDigest: string): ImageRecord | undefined {
		try {
			return JSON.parse(readFileSync(join(this.root, "images", `${hex(manifestDigest)}.json`), "utf8")) as ImageRecord;
		} catch {
			return undefined;
		}
	}

	private saveRecord(r: ImageRecord): void {
		const p = join(this.root, "images", `${hex(r.manifestDigest)}.json`);
		writeFileSync(`${p}.tmp`, JSON.stringify(r, null, 1));
		renameSync(`${p}.tmp`, p);
	}

	private addRef(ref: string, platform: Platform, manifestDigest: string): void {
		const refs = this.refs();
		refs[`${ref}|${formatPlatform(normalizePlatform(platform))}`] = manifestDigest;
		this.saveRefs(refs);
		const rec = this.record(manifestDigest);
		if (rec && !rec.refs.includes(ref)) this.saveRecord({ ...rec, refs: [...rec.refs, ref] });
	}

	/** Pull ref for a platform (default: this machine's) from its registry. */
	async pull(
		refStr: string,
		o: { platform?: string; signal?: AbortSignal; onProgress?: (p: PullProgress) => void } = {},
	): Promise<ResolvedImage> {
		const ref = parseReference(refStr);
		const want = o.platform ? parsePlatform(o.platform) : hostPlatform();
		let m = await this.client.manifest(ref, ref.digest ?? ref.tag!, o.signal);
		if (m.mediaType === MEDIA.ociIndex || m.mediaType === MEDIA.dockerList || Array.isArray(m.json.manifests)) {
			const entries = (m.json.manifests ?? []) as Array<{ digest: string; platform?: Platform }>;
			const pick = entries.find((e) => e.platform && platformMatches(e.platform, want));
			if (!pick) {
				throw new PlatformNotFoundError(
					ref.canonical,
					formatPlatform(want),
					entries.filter((e) => e.platform).map((e) => formatPlatform(e.platform!)),
				);
			}
			m = await this.client.manifest(ref, pick.digest, o.signal);
		}
		if (m.mediaType !== MEDIA.ociManifest && m.mediaType !== MEDIA.dockerManifest)
			throw new UnsupportedMediaTypeError(m.mediaType || "(none)");
		const manifest = m.json as {
			config: { digest: string; mediaType: string };
			layers: Array<{ digest: string; mediaType: string; size: number }>;
		};
		for (const l of manifest.layers) if (!LAYER_TYPES[l.mediaType]) throw new UnsupportedMediaTypeError(l.mediaType);
		// Everything this pull adds is listed and removed again if the pull fails: no blob, layer or
		// record of a failed pull stays (the manifest blob is written last of all).
		const created: string[] = [];
		try {
			const configPath = this.blobPath(manifest.config.digest);
			if (!existsSync(configPath)) {
				await this.client.blob(ref, manifest.config.digest, configPath, { signal: o.signal });
				created.push(configPath);
			}
			const config = JSON.parse(readFileSync(configPath, "utf8")) as ImageConfig;
			const diffIds = config.rootfs?.diff_ids ?? [];
			if (diffIds.length !== manifest.layers.length) {
				throw new ImageError(
					`${ref.canonical}: config lists ${diffIds.length} layers, manifest ${manifest.layers.length}`,
					"ERR_BAD_IMAGE",
				);
			}
			const platform: Platform = {
				os: config.os ?? want.os,
				architecture: config.architecture ?? want.architecture,
				variant: config.variant ?? want.variant,
			};
			// Layers in parallel (three at a time), each downloaded then unpacked; a layer that occurs
			// twice in the image (the same empty layer, say) is fetched once.
			const seen = new Set<string>();
			const queue = manifest.layers
				.map((l, i) => ({ ...l, diffId: diffIds[i]! }))
				.filter((l) => !seen.has(l.diffId) && seen.add(l.diffId));
			// The first failure stops the other workers, and the cleanup below waits for all of them.
			const stop = new AbortController();
			const signal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
			const worker = async () => {
				try {
					for (let l = queue.shift(); l; l = queue.shift()) await this.fetchLayer(ref, l, { ...o, signal }, created);
				} catch (err) {
					stop.abort();
					throw err;
				}
			};
			const results = await Promise.allSettled([worker(), worker(), worker()]);
			const failed = results.find((r) => r.status === "rejected");
			if (failed) throw o.signal?.aborted ? o.signal.reason : firstCause(results);
			writeFileSync(this.blobPath(m.digest), m.bytes);
			const rec = this.storeImage(
				ref.canonical,
				want,
				m.digest,
				manifest.config.digest,
				config,
				manifest.layers,
				platform,
			);
			return { ...rec, layerDirs: rec.layers.map((l) => this.layerDir(l.diffId)) };
		} catch (err) {
			for (const p of created) rmSync(p, { recursive: true, force: true });
			throw err;
		}
	}

	private async fetchLayer(
		ref: Reference,
		l: { digest: string; mediaType: string; size: number; diffId: string },
		o: { signal?: AbortSignal; onProgress?: (p: PullProgress) => void },
		created: string[],
	): Promise<void> {
		const short = hex(l.digest).slice(0, 12);
		if (existsSync(this.layerDir(l.diffId))) {
			o.onProgress?.({ layer: short, status: "exists" });
			return;
		}
		const blob = this.blobPath(l.digest);
		if (!existsSync(blob)) {
			let current = 0;
			o.onProgress?.({ layer: short, status: "downloading", current, total: l.size });
			await this.client.blob(ref, l.digest, blob, {
				signal: o.signal,
				onBytes: (n) => {
					current += n;
					o.onProgress?.({ layer: short, status: "downloading", current, total: l.size });
				},
			});
			created.push(blob);
		}
		o.onProgress?.({ layer: short, status: "extracting" });
		const dest = this.layerDir(l.diffId);
		await unpackLayer(blob, LAYER_TYPES[l.mediaType]!, dest, { diffId: l.diffId, signal: o.signal });
		created.push(dest);
		o.onProgress?.({ layer: short, status: "done" });
	}

	/** Write (or merge into) the record of an image and point ref|platform at it. */
	private storeImage(
		ref: string,
		want: Platform,
		manifestDigest: string,
		configDigest: string,
		config: ImageConfig,
		layers: Array<{ digest: string; mediaType: string; size: number }>,
		platform: Platform,
	): ImageRecord {
		const diffIds = config.rootfs?.diff_ids ?? [];
		const old = this.record(manifestDigest);
		const rec: ImageRecord = {
			id: configDigest,
			manifestDigest,
			refs: [...new Set([...(old?.refs ?? []), ref])],
			platform: normalizePlatform(platform),
			config,
			layers: layers.map((l, i) => ({ digest: l.digest, diffId: diffIds[i]!, mediaType: l.mediaType, size: l.size })),
			created: old?.created ?? new Date().toISOString(),
		};
		this.saveRecord(rec);
		this.addRef(ref, want, manifestDigest);
		return rec;
	}

	/** Import an OCI image layout (directory or .tar) or a `docker save` archive; returns what it stored. */
	async load(path: string, o: { platform?: string; name?: string } = {}): Promise<ImageRecord[]> {
		if (o.name !== undefined && parseReference(o.name) && (o.name.includes("@") || /:[^/]*$/.test(o.name)))
			throw new InvalidReferenceError(o.name, "--name is a repository without a tag (the archive gives the tag)");
		let dir = path;
		let tmp: string | undefined;
		if (statSync(path).isFile()) {
			tmp = mkdtempSync(join(this.root, "tmp", "load-"));
			execFileSync("tar", ["-xf", path, "-C", tmp, "--no-same-owner"]);
			dir = tmp;
		}
		try {
			if (existsSync(join(dir, "oci-layout")))
				return await this.loadOciLayout(dir, o.platform ? parsePlatform(o.platform) : hostPlatform(), o.name);
			if (existsSync(join(dir, "manifest.json"))) return await this.loadDockerSave(dir);
			throw new ImageError(`${path} is neither an OCI layout nor a docker save archive`, "ERR_BAD_ARCHIVE");
		} finally {
			if (tmp) rmSync(tmp, { recursive: true, force: true });
		}
	}

	private importBlob(dir: string, digest: string): string {
		if (!/^sha256:[a-f0-9]{64}$/.test(digest))
			throw new ImageError(`bad digest ${digest} in archive`, "ERR_BAD_ARCHIVE");
		const src = join(dir, "blobs", "sha256", hex(digest));
		const data = readFileSync(src);
		if (sha256(data) !== digest)
			throw new ImageError(`blob ${digest} in the archive does not match its digest`, "ERR_DIGEST_MISMATCH");
		writeFileSync(this.blobPath(digest), data);
		return this.blobPath(digest);
	}

	private async loadOciLayout(dir: string, want: Platform, name?: string): Promise<ImageRecord[]> {
		const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as {
			manifests: Array<{
				digest: string;
				mediaType: string;
				annotations?: Record<string, string>;
				platform?: Platform;
			}>;
		};
		const out: ImageRecord[] = [];
		for (const top of index.manifests) {
			const ref = layoutRef(top.annotations ?? {}, name, top.digest);
			let desc = top;
			const first = JSON.parse(readFileSync(this.importBlob(dir, top.digest), "utf8")) as {
				manifests?: typeof index.manifests;
			};
			if (first.manifests) {
				const pick = first.manifests.find((e) => e.platform && platformMatches(e.platform, want));
				if (!pick) continue;
				desc = pick;
			}
			const manifest = JSON.parse(readFileSync(this.importBlob(dir, desc.digest), "utf8")) as {
				config: { digest: string };
				layers: Array<{ digest: string; mediaType: string; size: number }>;
			};
			const config = JSON.parse(readFileSync(this.importBlob(dir, manifest.config.digest), "utf8")) as ImageConfig;
			const diffIds = config.rootfs?.diff_ids ?? [];
			if (diffIds.length !== manifest.layers.length)
				throw new ImageError(
					`${ref}: config lists ${diffIds.length} layers, manifest ${manifest.layers.length}`,
					"ERR_BAD_IMAGE",
				);
			for (const [i, l] of manifest.layers.entries()) {
				const comp = LAYER_TYPES[l.mediaType];
				if (!comp) throw new UnsupportedMediaTypeError(l.mediaType);
				const blob = this.importBlob(dir, l.digest);
				if (!existsSync(this.layerDir(diffIds[i]!)))
					await unpackLayer(blob, comp, this.layerDir(diffIds[i]!), { diffId: diffIds[i] });
			}
			const platform = {
				os: config.os ?? want.os,
				architecture: config.architecture ?? want.architecture,
				variant: config.variant ?? want.variant,
			};
			const rec = this.storeImage(ref, want, desc.digest, manifest.config.digest, config, manifest.layers, platform);
			out.push(rec);
		}
		return out;
	}

	private async loadDockerSave(dir: string): Promise<ImageRecord[]> {
		const entries = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as Array<{
			Config: string;
			RepoTags?: string[];
			Layers: string[];
		}>;
		const inside = (rel: string) => {
			if (typeof rel !== "string" || rel.startsWith("/") || rel.split("/").includes(".."))
				throw new ImageError(`bad path ${rel} in the archive's manifest.json`, "ERR_BAD_ARCHIVE");
			return join(dir, rel);
		};
		const out: ImageRecord[] = [];
		for (const e of entries) {
			const cfgBytes = readFileSync(inside(e.Config));
			const config = JSON.parse(cfgBytes.toString()) as ImageConfig;
			const id = sha256(cfgBytes);
			const diffIds = config.rootfs?.diff_ids ?? [];
			if (diffIds.length !== e.Layers.length)
				throw new ImageError(
					`${e.Config}: config lists ${diffIds.length} layers, manifest.json ${e.Layers.length}`,
					"ERR_BAD_IMAGE",
				);
			writeFileSync(this.blobPath(id), cfgBytes);
			const layers: ImageRecord["layers"] = [];
			for (const [i, rel] of e.Layers.entries()) {
				const diffId = diffIds[i]!;
				const layerFile = inside(rel);
				const final = this.layerDir(diffId);
				if (!existsSync(final)) await unpackLayer(layerFile, sniffCompression(layerFile), final, { diffId });
				layers.push({
					digest: diffId,
					diffId,
					mediaType: "application/vnd.oci.image.layer.v1.tar",
					size: statSync(layerFile).size,
				});
			}
			// docker save keeps the config's platform as is: arm64 often has no variant.
			const platform = normalizePlatform({
				os: config.os ?? "linux",
				architecture: config.architecture ?? "amd64",
				variant: config.variant,
			});
			const refs = (e.RepoTags ?? []).map((t) => parseReference(t).canonical);
			const rec: ImageRecord = {
				id,
				manifestDigest: id,
				refs,
				platform,
				config,
				layers,
				created: new Date().toISOString(),
			};
			this.saveRecord(rec);
			for (const r of refs) this.addRef(r, platform, id);
			out.push(rec);
		}
		return out;
	}

	/** The stored image for ref and platform (default: this machine's). */
	resolve(refStr: string, o: { platform?: string } = {}): ResolvedImage {
		const want = o.platform ? parsePlatform(o.platform) : hostPlatform();
		const byId = refStr.startsWith("sha256:")
			? this.list().find((r) => r.id === refStr || r.manifestDigest === refStr)
			: undefined;
		const ref = byId ? undefined : parseReference(refStr);
		const digest = byId?.manifestDigest ?? this.refs()[`${ref!.canonical}|${formatPlatform(normalizePlatform(want))}`];
		const rec = digest ? this.record(digest) : undefined;
		if (!rec)
			throw new ImageNotFoundError(
				ref?.canonical ?? refStr,
				`locally for ${formatPlatform(want)} (tsswarm image pull first)`,
			);
		const layerDirs = rec.layers.map((l) => this.layerDir(l.diffId));
		for (const d of layerDirs)
			if (!existsSync(d))
				throw new ImageError(`layer ${d} of ${refStr} is missing; pull it again`, "ERR_LAYER_MISSING");
		return { ...rec, layerDirs };
	}

	list(): ImageRecord[] {
		return readdirSync(join(this.root, "images"))
			.filter((n) => n.endsWith(".json"))
			.map((n) => JSON.parse(readFileSync(join(this.root, "images", n), "utf8")) as ImageRecord);
	}

	/** The manifest digests a reference points at (one per platform pulled). */
	digestsOf(refStr: string): string[] {
		const ref = parseReference(refStr).canonical;
		return Object.entries(this.refs())
			.filter(([k]) => k.startsWith(`${ref}|`))
			.map(([, d]) => d);
	}

	/**
	 * Remove a reference. The image record goes when no reference is left, unless `keep` says it is
	 * still used (a container's image): it then stays untagged, so prune keeps its data.
	 */
	remove(refStr: string, o: { keep?: (manifestDigest: string) => boolean } = {}): number {
		const ref = parseReference(refStr).canonical;
		const refs = this.refs();
		let removed = 0;
		for (const k of Object.keys(refs)) {
			if (k.startsWith(`${ref}|`)) {
				const digest = refs[k]!;
				delete refs[k];
				removed++;
				const rec = this.record(digest);
				if (rec) {
					const left = rec.refs.filter((r) => r !== ref);
					if (left.length === 0 && !Object.values(refs).includes(digest) && !o.keep?.(digest))
						rmSync(join(this.root, "images", `${hex(digest)}.json`));
					else this.saveRecord({ ...rec, refs: left });
				}
			}
		}
		if (removed === 0) throw new ImageNotFoundError(ref, "locally");
		this.saveRefs(refs);
		return removed;
	}

	/**
	 * Delete blobs and layers no image references. `keep` lists manifest digests still in use
	 * (containers' images): their records stay even untagged; other untagged records go first.
	 */
	prune(o: { keep?: string[] } = {}): { images: number; blobs: number; layers: number } {
		const keep = new Set((o.keep ?? []).map(hex));
		let images = 0;
		const recs = this.list().filter((r) => {
			if (r.refs.length > 0 || keep.has(hex(r.manifestDigest))) return true;
			rmSync(join(this.root, "images", `${hex(r.manifestDigest)}.json`), { force: true });
			images++;
			return false;
		});
		const keepBlobs = new Set<string>();
		const keepLayers = new Set<string>();
		for (const r of recs) {
			keepBlobs.add(hex(r.manifestDigest));
			keepBlobs.add(hex(r.id));
			for (const l of r.layers) {
				keepBlobs.add(hex(l.digest));
				keepLayers.add(this.layerDir(l.diffId));
			}
		}
		let blobs = 0;
		let layers = 0;
		for (const b of readdirSync(join(this.root, "blobs", "sha256"))) {
			if (!keepBlobs.has(b)) {
				rmSync(join(this.root, "blobs", "sha256", b), { force: true });
				blobs++;
			}
		}
		for (const l of readdirSync(join(this.root, "layers"))) {
			const p = join(this.root, "layers", l);
			if (!keepLayers.has(p)) {
				rmSync(p, { recursive: true, force: true });
				layers++;
			}
		}
		return { images, blobs, layers };
	}
}
