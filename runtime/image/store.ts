// The image store: content-addressed blobs, unpacked layers, and image records by reference.
//
//   ROOT/blobs/sha256/<hex>       manifests, configs and compressed layers, digest-verified
//   ROOT/layers/<diffid hex>/fs/  one unpacked layer, stackable as an overlay lowerdir
//   ROOT/layers/<diffid hex>/verified  the diff id, written (fsync) once fs/ hashed to it
//   ROOT/images/<hex>.json        an image record (by manifest digest)
//   ROOT/refs.json                "ref|platform" -> manifest digest
// Digests become paths only through digestHex(). Everything lands under a temporary name and is
// renamed into place, so a crash or a bad blob never leaves partial content; prune() removes
// what no image references.
import { randomBytes } from "node:crypto";
import {
	closeSync,
	copyFileSync,
	existsSync,
	fsyncSync,
	mkdirSync,
	mkdtempSync,
	openSync,
	readdirSync,
	readFileSync,
	renameSync,
	rmSync,
	statSync,
	writeFileSync,
	writeSync,
} from "node:fs";
import { join } from "node:path";
import { type ArchiveFiles, dirArchive, hashFile, sniffCompression, tarArchive } from "./archive.ts";
import { digestHex, isDigest } from "./digest.ts";
import {
	DigestMismatchError,
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

/** The default bound on a layer's uncompressed stream (ImageStore's maxLayerBytes). */
export const MAX_LAYER_BYTES = 8 * 2 ** 30;
const MARKER = "verified";

/** Writes path whole (temp + rename) and durably (fsync before the rename and of the directory). */
function writeDurably(dir: string, name: string, data: string | Buffer): void {
	const tmp = join(dir, `${name}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
	const fd = openSync(tmp, "wx", 0o644);
	try {
		writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
		fsyncSync(fd);
	} finally {
		closeSync(fd);
	}
	renameSync(tmp, join(dir, name));
	fsyncDir(dir);
}

function fsyncDir(dir: string): void {
	const fd = openSync(dir, "r");
	try {
		fsyncSync(fd);
	} finally {
		closeSync(fd);
	}
}

/** The diff ids of a config, each validated: they become layer directory names. */
function diffIdsOf(config: ImageConfig, what: string): string[] {
	const ids = config.rootfs?.diff_ids ?? [];
	if (!Array.isArray(ids)) throw new ImageError(`${what}: rootfs.diff_ids is not a list`, "ERR_BAD_IMAGE");
	for (const d of ids) digestHex(d, `diff id in ${what}`);
	return ids;
}

/** The layers of a manifest, each digest validated and each media type known. */
function layersOf(
	m: { layers?: unknown },
	what: string,
	mediaTypeNeeded = true,
): Array<{ digest: string; mediaType: string; size: number }> {
	if (!Array.isArray(m.layers)) throw new ImageError(`${what}: the manifest has no layer list`, "ERR_BAD_IMAGE");
	const layers = m.layers as Array<{ digest: string; mediaType: string; size: number }>;
	for (const l of layers) {
		digestHex(l?.digest, `layer of ${what}`);
		if (mediaTypeNeeded && !LAYER_TYPES[l.mediaType]) throw new UnsupportedMediaTypeError(l.mediaType);
	}
	return layers;
}

/** A config or layer that `docker save` names by its digest ("<hex>.json", "blobs/sha256/<hex>"). */
function namedDigest(rel: string): string | undefined {
	const m = /^(?:blobs\/sha256\/([a-f0-9]{64})|([a-f0-9]{64})\.json)$/.exec(rel.replace(/^\.\//, ""));
	return m ? `sha256:${m[1] ?? m[2]}` : undefined;
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
	if (v === undefined)
		return parseReference(`sha256-${digestHex(digest, "index.json entry").slice(0, 12)}:latest`).canonical;
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
	/** The bound on a layer's uncompressed stream; more is refused (LayerTooLargeError). */
	readonly maxLayerBytes: number;
	private readonly client: RegistryClient;

	constructor(o: { root: string; maxLayerBytes?: number } & RegistryOptions) {
		this.root = o.root;
		this.maxLayerBytes = o.maxLayerBytes ?? MAX_LAYER_BYTES;
		this.client = new RegistryClient(o);
		for (const d of ["blobs/sha256", "layers", "images", "tmp"]) mkdirSync(join(this.root, d), { recursive: true });
	}

	private blobPath(digest: string): string {
		return join(this.root, "blobs", "sha256", digestHex(digest, "blob"));
	}

	private recordPath(manifestDigest: string): string {
		return join(this.root, "images", `${digestHex(manifestDigest, "manifest")}.json`);
	}

	/** The unpacked layer (an overlay lowerdir); it counts only when layerPresent() says so. */
	layerDir(diffId: string): string {
		return join(this.root, "layers", digestHex(diffId, "diff id"), "fs");
	}

	/** A layer is there only when its marker, written after a verified unpack, names its diff id. */
	layerPresent(diffId: string): boolean {
		try {
			return readFileSync(join(this.root, "layers", digestHex(diffId, "diff id"), MARKER), "utf8") === diffId;
		} catch {
			return false;
		}
	}

	/**
	 * Unpacks a layer unless a verified one is there: into ROOT/tmp, the uncompressed stream hashed
	 * against the diff id and bounded by maxLayerBytes, then the marker (fsync), then one rename into
	 * place. A directory without the marker (a crash mid-way, an older store) is removed and redone.
	 * Returns the directory it made, or undefined when the layer was there.
	 */
	private async ensureLayer(
		blob: string,
		compression: Compression,
		diffId: string,
		signal?: AbortSignal,
	): Promise<string | undefined> {
		const hex = digestHex(diffId, "diff id");
		if (this.layerPresent(diffId)) return undefined;
		const final = join(this.root, "layers", hex);
		rmSync(final, { recursive: true, force: true });
		const work = mkdtempSync(join(this.root, "tmp", `layer-${hex.slice(0, 12)}-`));
		try {
			await unpackLayer(blob, compression, join(work, "fs"), { diffId, signal, maxBytes: this.maxLayerBytes });
			writeDurably(work, MARKER, diffId);
			try {
				renameSync(work, final);
			} catch (err) {
				const code = (err as NodeJS.ErrnoException).code;
				if ((code === "ENOTEMPTY" || code === "EEXIST") && this.layerPresent(diffId)) return undefined; // a concurrent unpack won
				throw err;
			}
			fsyncDir(join(this.root, "layers"));
			return final;
		} finally {
			rmSync(work, { recursive: true, force: true });
		}
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
			return JSON.parse(readFileSync(this.recordPath(manifestDigest), "utf8")) as ImageRecord;
		} catch {
			return undefined;
		}
	}

	private saveRecord(r: ImageRecord): void {
		const p = this.recordPath(r.manifestDigest);
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
			const pick = entries.find((e) => e?.platform && platformMatches(e.platform, want));
			if (!pick) {
				throw new PlatformNotFoundError(
					ref.canonical,
					formatPlatform(want),
					entries.filter((e) => e.platform).map((e) => formatPlatform(e.platform!)),
				);
			}
			digestHex(pick.digest, `index entry of ${ref.canonical}`);
			m = await this.client.manifest(ref, pick.digest, o.signal);
		}
		if (m.mediaType !== MEDIA.ociManifest && m.mediaType !== MEDIA.dockerManifest)
			throw new UnsupportedMediaTypeError(m.mediaType || "(none)");
		const manifest = m.json as {
			config: { digest: string; mediaType: string };
			layers: Array<{ digest: string; mediaType: string; size: number }>;
		};
		// Every digest is checked before anything is fetched, the diff ids once the config is here.
		digestHex(manifest.config?.digest, `config of ${ref.canonical}`);
		layersOf(manifest, ref.canonical);
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
			const diffIds = diffIdsOf(config, ref.canonical);
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
			writeDurably(join(this.root, "blobs", "sha256"), digestHex(m.digest, "manifest"), m.bytes);
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
		const short = digestHex(l.digest, "layer").slice(0, 12);
		if (this.layerPresent(l.diffId)) {
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
		const made = await this.ensureLayer(blob, LAYER_TYPES[l.mediaType]!, l.diffId, o.signal);
		if (made) created.push(made);
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

	/**
	 * Import an OCI image layout or a `docker save` archive (a directory, or a plain, gzip or zstd
	 * .tar); returns what it stored. Entries are looked up by name inside the archive (archive.ts),
	 * every blob is checked against its digest, and an image that fails leaves nothing it added.
	 */
	async load(path: string, o: { platform?: string; name?: string } = {}): Promise<ImageRecord[]> {
		if (o.name !== undefined && parseReference(o.name) && (o.name.includes("@") || /:[^/]*$/.test(o.name)))
			throw new InvalidReferenceError(o.name, "--name is a repository without a tag (the archive gives the tag)");
		const tmp = mkdtempSync(join(this.root, "tmp", "load-"));
		try {
			let files: ArchiveFiles;
			if (statSync(path).isFile()) {
				try {
					files = await tarArchive(path, tmp);
				} catch (err) {
					if (err instanceof ImageError) throw err;
					throw new ImageError(`${path} is not a readable tar archive: ${(err as Error).message}`, "ERR_BAD_ARCHIVE", {
						cause: err,
					});
				}
			} else files = dirArchive(path);
			if (files.has("oci-layout"))
				return await this.loadOciLayout(files, o.platform ? parsePlatform(o.platform) : hostPlatform(), o.name);
			if (files.has("manifest.json")) return await this.loadDockerSave(files);
			throw new ImageError(`${path} is neither an OCI layout nor a docker save archive`, "ERR_BAD_ARCHIVE");
		} finally {
			rmSync(tmp, { recursive: true, force: true });
		}
	}

	/** Runs one image's import; on failure removes every blob and layer it added. */
	private async undoing<T>(fn: (created: string[]) => Promise<T>): Promise<T> {
		const created: string[] = [];
		try {
			return await fn(created);
		} catch (err) {
			for (const p of created) rmSync(p, { recursive: true, force: true });
			throw err;
		}
	}

	/** Copies the archive's blob into the store (temp, hash, rename); a blob already stored is kept. */
	private async importBlob(files: ArchiveFiles, digest: string, created: string[]): Promise<string> {
		const hex = digestHex(digest, "blob in the archive");
		const dest = this.blobPath(digest);
		if (existsSync(dest)) return dest;
		const tmp = join(this.root, "tmp", `blob-${hex}-${process.pid}-${randomBytes(4).toString("hex")}`);
		try {
			copyFileSync(files.file(`blobs/sha256/${hex}`), tmp);
			const got = await hashFile(tmp);
			if (got !== digest) throw new DigestMismatchError(`blob ${digest} in the archive`, digest, got);
			renameSync(tmp, dest);
		} finally {
			rmSync(tmp, { force: true });
		}
		created.push(dest);
		return dest;
	}

	private async loadOciLayout(files: ArchiveFiles, want: Platform, name?: string): Promise<ImageRecord[]> {
		type Desc = { digest: string; mediaType: string; annotations?: Record<string, string>; platform?: Platform };
		const index = JSON.parse(readFileSync(files.file("index.json"), "utf8")) as { manifests?: Desc[] };
		if (!Array.isArray(index.manifests))
			throw new ImageError("the archive's index.json has no manifest list", "ERR_BAD_ARCHIVE");
		const out: ImageRecord[] = [];
		for (const top of index.manifests) {
			const ref = layoutRef(top.annotations ?? {}, name, top.digest);
			const rec = await this.undoing(async (created) => {
				let desc = top;
				const first = JSON.parse(readFileSync(await this.importBlob(files, top.digest, created), "utf8")) as {
					manifests?: Desc[];
				};
				if (first.manifests) {
					const pick = first.manifests.find((e) => e?.platform && platformMatches(e.platform, want));
					if (!pick) return undefined;
					desc = pick;
				}
				const manifest = JSON.parse(readFileSync(await this.importBlob(files, desc.digest, created), "utf8")) as {
					config: { digest: string };
					layers: Array<{ digest: string; mediaType: string; size: number }>;
				};
				const layers = layersOf(manifest, ref);
				const configPath = await this.importBlob(files, manifest.config?.digest, created);
				const config = JSON.parse(readFileSync(configPath, "utf8")) as ImageConfig;
				const diffIds = diffIdsOf(config, ref);
				if (diffIds.length !== layers.length)
					throw new ImageError(
						`${ref}: config lists ${diffIds.length} layers, manifest ${layers.length}`,
						"ERR_BAD_IMAGE",
					);
				for (const [i, l] of layers.entries()) {
					const blob = await this.importBlob(files, l.digest, created);
					const made = await this.ensureLayer(blob, LAYER_TYPES[l.mediaType]!, diffIds[i]!);
					if (made) created.push(made);
				}
				const platform = {
					os: config.os ?? want.os,
					architecture: config.architecture ?? want.architecture,
					variant: config.variant ?? want.variant,
				};
				return this.storeImage(ref, want, desc.digest, manifest.config.digest, config, layers, platform);
			});
			if (rec) out.push(rec);
		}
		return out;
	}

	private async loadDockerSave(files: ArchiveFiles): Promise<ImageRecord[]> {
		const entries = JSON.parse(readFileSync(files.file("manifest.json"), "utf8")) as Array<{
			Config: string;
			RepoTags?: string[];
			Layers: string[];
		}>;
		if (!Array.isArray(entries)) throw new ImageError("the archive's manifest.json is not a list", "ERR_BAD_ARCHIVE");
		const out: ImageRecord[] = [];
		for (const e of entries) {
			if (typeof e?.Config !== "string" || !Array.isArray(e.Layers))
				throw new ImageError("an entry of the archive's manifest.json lacks Config or Layers", "ERR_BAD_ARCHIVE");
			const cfgBytes = readFileSync(files.file(e.Config));
			const id = sha256(cfgBytes);
			// docker save names the config by its digest: the name is a claim to check.
			const claimed = namedDigest(e.Config);
			if (claimed && claimed !== id) throw new DigestMismatchError(`config ${e.Config} in the archive`, claimed, id);
			const config = JSON.parse(cfgBytes.toString()) as ImageConfig;
			const diffIds = diffIdsOf(config, e.Config);
			if (diffIds.length !== e.Layers.length)
				throw new ImageError(
					`${e.Config}: config lists ${diffIds.length} layers, manifest.json ${e.Layers.length}`,
					"ERR_BAD_IMAGE",
				);
			const layerFiles = e.Layers.map((rel) => files.file(rel));
			const rec = await this.undoing(async (created) => {
				if (!existsSync(this.blobPath(id))) {
					writeDurably(join(this.root, "blobs", "sha256"), digestHex(id, "config"), cfgBytes);
					created.push(this.blobPath(id));
				}
				const layers: ImageRecord["layers"] = [];
				for (const [i, rel] of e.Layers.entries()) {
					const diffId = diffIds[i]!;
					const layerFile = layerFiles[i]!;
					const named = namedDigest(rel);
					if (named) {
						const got = await hashFile(layerFile);
						if (got !== named) throw new DigestMismatchError(`layer ${rel} in the archive`, named, got);
					}
					const made = await this.ensureLayer(layerFile, sniffCompression(layerFile), diffId);
					if (made) created.push(made);
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
				return rec;
			});
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
		for (const l of rec.layers)
			if (!this.layerPresent(l.diffId))
				throw new ImageError(`layer ${l.diffId} of ${refStr} is missing; pull it again`, "ERR_LAYER_MISSING");
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
						rmSync(this.recordPath(digest));
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
		const keep = new Set(o.keep ?? []);
		let images = 0;
		const recs = this.list().filter((r) => {
			if (r.refs.length > 0 || keep.has(r.manifestDigest)) return true;
			if (isDigest(r.manifestDigest)) rmSync(this.recordPath(r.manifestDigest), { force: true });
			images++;
			return false;
		});
		// File names in blobs/ and layers/ are digest hex; a record's digests were validated when stored.
		const hexOf = (d: string) => (isDigest(d) ? d.slice("sha256:".length) : "");
		const keepBlobs = new Set<string>();
		const keepLayers = new Set<string>();
		for (const r of recs) {
			keepBlobs.add(hexOf(r.manifestDigest));
			keepBlobs.add(hexOf(r.id));
			for (const l of r.layers) {
				keepBlobs.add(hexOf(l.digest));
				keepLayers.add(hexOf(l.diffId));
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
			if (!keepLayers.has(l)) {
				rmSync(join(this.root, "layers", l), { recursive: true, force: true });
				layers++;
			}
		}
		return { images, blobs, layers };
	}
}
