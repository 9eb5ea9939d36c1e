// Safe layer unpacking into a directory of its own, overlayfs style: a whiteout becomes a 0/0
// character device and an opaque directory gets trusted.overlay.opaque=y, so the layer
// directories stack directly as overlay lowerdirs. Anything that could write outside the
// directory — "..", absolute names, paths through symlinks, hardlinks to outside or to anything
// but a file, replacing a symlink that points out — and device nodes are refused with
// UnsafeLayerError, a stream past maxBytes with LayerTooLargeError; the partial directory is removed.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
	chmodSync,
	createReadStream,
	createWriteStream,
	lchownSync,
	linkSync,
	lstatSync,
	lutimesSync,
	mkdir as mkdirCb,
	mkdirSync,
	readlinkSync,
	rename as renameCb,
	rm as rmCb,
	symlinkSync,
	unlinkSync,
	writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import type TarStream from "tar-stream";
import { DigestMismatchError, ImageError, LayerTooLargeError, UnsafeLayerError } from "./errors.ts";

export type Compression = "gzip" | "zstd" | "none";

// fs's callbacks, not node:fs/promises: that module loads the FileHandle machinery and readline
// (~0.5 MB RSS in every agent that merely imports the runtime) for three calls.
const mkdir = promisify(mkdirCb);
const rename = promisify(renameCb);
const rm = promisify(rmCb);

function cleanName(raw: string): string[] {
	if (raw.startsWith("/")) throw new UnsafeLayerError(raw, "absolute path");
	const parts = raw.split("/").filter((p) => p !== "" && p !== ".");
	if (parts.includes("..")) throw new UnsafeLayerError(raw, "path contains ..");
	if (parts.length === 0) return [];
	return parts;
}

// Metadata calls are synchronous on purpose: they take microseconds, while an awaited fs call
// costs a thread-pool round trip; a layer of a few hundred symlinks unpacked ~5x slower that way.
function lstatOrNull(p: string) {
	return lstatSync(p, { throwIfNoEntry: false }) ?? null;
}

/** Creates the parent directories of `parts` inside root, refusing to pass through a symlink. */
function ensureParents(root: string, parts: string[], entry: string): string {
	let cur = root;
	for (const p of parts.slice(0, -1)) {
		cur = join(cur, p);
		const st = lstatOrNull(cur);
		if (!st) mkdirSync(cur, { mode: 0o755 });
		else if (st.isSymbolicLink()) throw new UnsafeLayerError(entry, `path goes through the symlink ${p}`);
		else if (!st.isDirectory()) throw new UnsafeLayerError(entry, `${p} is not a directory`);
	}
	return join(root, ...parts);
}

const SMALL_FILE = 1 << 20;

/** Whether a symlink in the directory `dirParts` (of the layer root) with this target leaves the layer. */
function pointsOut(dirParts: string[], target: string): boolean {
	if (target.startsWith("/")) return true;
	let depth = dirParts.length;
	for (const p of target.split("/")) {
		if (p === "..") depth--;
		else if (p !== "" && p !== ".") depth++;
		if (depth < 0) return true;
	}
	return false;
}

/**
 * Makes room for an entry at path (parts inside the layer): a later entry replaces an earlier one,
 * except a symlink pointing out of the layer, which no entry may replace (writing "over" it is how
 * an archive would try to write through it). A directory entry over a directory keeps its content.
 */
function clearFor(path: string, parts: string[], entry: string): void {
	const st = lstatOrNull(path);
	if (!st) return;
	if (st.isSymbolicLink()) {
		const target = readlinkSync(path);
		if (pointsOut(parts.slice(0, -1), target))
			throw new UnsafeLayerError(
				entry,
				`it would replace the symlink ${parts.join("/")} -> ${target}, which points out`,
			);
	}
	if (st.isDirectory()) return;
	unlinkSync(path);
}

// tar-stream decodes every pax value as UTF-8, which mangles binary xattr values such as
// security.capability (bytes >= 0x80 become U+FFFD). Its pax decoder is swapped for one that keeps
// SCHILY.xattr.* values as latin1 strings, i.e. one char per byte, turned back into bytes below.
// (tar-headers.ts reaches the module; extract.js shares the instance.)
// tar-stream and zlib load on the first unpack: starting a container needs neither.
const XATTR = "SCHILY.xattr.";
let tarLib: Promise<{ tar: typeof TarStream; zlib: typeof import("node:zlib") }> | undefined;
export function loadTar() {
	tarLib ??= (async () => {
		(await import("./tar-headers.ts")).tarHeaders().decodePax = decodePaxRaw;
		const tar = (await import("tar-stream")).default;
		return { tar, zlib: await import("node:zlib") };
	})();
	return tarLib;
}

function decodePaxRaw(buf: Buffer): Record<string, string> {
	const result: Record<string, string> = {};
	while (buf.length) {
		let i = 0;
		while (i < buf.length && buf[i] !== 32) i++;
		const len = Number.parseInt(buf.subarray(0, i).toString("latin1"), 10);
		if (!len || len > buf.length) return result;
		const rec = buf.subarray(i + 1, len - 1); // "key=value", without the length and the newline
		const eq = rec.indexOf(0x3d);
		if (eq === -1) return result;
		const key = rec.subarray(0, eq).toString("utf8");
		result[key] = rec.subarray(eq + 1).toString(key.startsWith(XATTR) ? "latin1" : "utf8");
		buf = buf.subarray(len);
	}
	return result;
}

function xattrs(header: TarStream.Header): Array<[string, Buffer]> {
	const pax = (header.pax ?? {}) as Record<string, string>;
	return Object.entries(pax)
		.filter(([k]) => k.startsWith(XATTR))
		.map(([k, v]) => [k.slice(XATTR.length), Buffer.from(v, "latin1")]);
}

function setXattr(path: string, name: string, value: Buffer): void {
	execFileSync("setfattr", ["-h", "-n", name, "-v", `0x${value.toString("hex")}`, path], { stdio: "ignore" });
}

/**
 * Unpacks the (compressed) layer at blobPath into destDir (which must not exist) and checks the
 * uncompressed digest against diffId when given; more than maxBytes of uncompressed stream
 * (default unbounded) is refused. Returns the diff id it computed.
 */
export async function unpackLayer(
	blobPath: string,
	compression: Compression,
	destDir: string,
	o: { diffId?: string; signal?: AbortSignal; maxBytes?: number } = {},
): Promise<string> {
	const { tar, zlib } = await loadTar();
	// Unique per call: the same layer may be unpacked by two pulls at once; the first rename wins.
	const tmp = `${destDir}.unpack-${process.pid}-${randomBytes(4).toString("hex")}`;
	await mkdir(tmp, { recursive: true, mode: 0o755 });
	const hash = createHash("sha256");
	const maxBytes = o.maxBytes ?? Number.POSITIVE_INFINITY;
	let total = 0;
	// Between the decompressor and tar: hashes the uncompressed stream and bounds it.
	const tap = new Transform({
		transform(c: Buffer, _enc, cb) {
			total += c.length;
			if (total > maxBytes) return cb(new LayerTooLargeError(o.diffId ?? blobPath, maxBytes));
			hash.update(c);
			cb(null, c);
		},
	});
	const extract = tar.extract();
	const source = createReadStream(blobPath);
	const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream> = [source];
	if (compression === "gzip") stages.push(zlib.createGunzip());
	else if (compression === "zstd") stages.push(zlib.createZstdDecompress());
	const feeding = pipeline([...stages, tap, extract] as unknown as [Readable, ...NodeJS.WritableStream[]], {
		signal: o.signal,
	});
	const opaque: string[] = [];
	const dirTimes: Array<[string, Date]> = [];
	try {
		for await (const entry of extract) {
			const h = entry.header;
			const parts = cleanName(h.name);
			if (parts.length === 0) {
				entry.resume();
				continue;
			}
			const base = parts[parts.length - 1]!;
			const path = ensureParents(tmp, parts, h.name);
			if (base === ".wh..wh..opq") {
				opaque.push(join(tmp, ...parts.slice(0, -1)));
				entry.resume();
				continue;
			}
			if (base.startsWith(".wh.")) {
				const name = base.slice(4);
				if (name === "" || name === "." || name === "..") throw new UnsafeLayerError(h.name, "whiteout of no name");
				const target = join(tmp, ...parts.slice(0, -1), name);
				clearFor(target, [...parts.slice(0, -1), name], h.name);
				execFileSync("mknod", [target, "c", "0", "0"]);
				entry.resume();
				continue;
			}
			switch (h.type) {
				case "file":
				case "contiguous-file": {
					clearFor(path, parts, h.name);
					// "wx" (O_EXCL): the file is new, so a write never follows a symlink.
					if ((h.size ?? 0) <= SMALL_FILE) {
						// Most files in a layer are small: one synchronous write, no stream.
						const chunks: Buffer[] = [];
						for await (const c of entry) chunks.push(c as Buffer);
						writeFileSync(path, Buffer.concat(chunks), { mode: 0o600, flag: "wx" });
					} else await pipeline(entry, createWriteStream(path, { mode: 0o600, flags: "wx" }));
					break;
				}
				case "directory": {
					clearFor(path, parts, h.name);
					if (!lstatOrNull(path)?.isDirectory()) mkdirSync(path, { mode: 0o755 });
					entry.resume();
					break;
				}
				case "symlink":
					clearFor(path, parts, h.name);
					// Stored as is: a symlink is only ever resolved inside the container's root.
					symlinkSync(h.linkname ?? "", path);
					entry.resume();
					break;
				case "link": {
					const targetParts = cleanName(h.linkname ?? "");
					const target = ensureParents(tmp, targetParts, h.name);
					const st = lstatOrNull(target);
					if (!st?.isFile())
						throw new UnsafeLayerError(
							h.name,
							st?.isSymbolicLink()
								? `hardlink target ${h.linkname} is a symlink (only files are linked)`
								: `hardlink target ${h.linkname} is not a file in this layer`,
						);
					clearFor(path, parts, h.name);
					linkSync(target, path);
					entry.resume();
					continue; // a hardlink shares the target's metadata
				}
				case "fifo":
					clearFor(path, parts, h.name);
					execFileSync("mkfifo", [path]);
					entry.resume();
					break;
				case "character-device":
				case "block-device":
					throw new UnsafeLayerError(h.name, "device nodes are not allowed in images");
				default:
					entry.resume();
					continue; // pax headers and the like carry no file
			}
			lchownSync(path, h.uid ?? 0, h.gid ?? 0);
			if (h.type !== "symlink") chmodSync(path, (h.mode ?? 0o644) & 0o7777);
			for (const [name, value] of xattrs(h)) setXattr(path, name, value);
			const mtime = h.mtime ?? new Date(0);
			if (h.type === "directory") dirTimes.push([path, mtime]);
			else lutimesSync(path, mtime, mtime);
		}
		await feeding;
		for (const dir of opaque) setXattr(dir, "trusted.overlay.opaque", Buffer.from("y"));
		// Directory times last: writing into a directory changes its mtime.
		for (const [p, t] of dirTimes.reverse()) lutimesSync(p, t, t);
		const diffId = `sha256:${hash.digest("hex")}`;
		if (o.diffId && o.diffId !== diffId) throw new DigestMismatchError(`layer ${blobPath}`, o.diffId, diffId);
		try {
			await rename(tmp, destDir);
		} catch (err) {
			const code = (err as NodeJS.ErrnoException).code;
			if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
			await rm(tmp, { recursive: true, force: true }); // someone else unpacked the same layer
		}
		return diffId;
	} catch (err) {
		extract.destroy();
		source.destroy();
		// A stage's own error (the size bound, say) reaches the entry loop only as a premature close.
		const cause = await feeding.then(
			() => undefined,
			(e: unknown) => e,
		);
		await rm(tmp, { recursive: true, force: true });
		throw cause instanceof ImageError && !(err instanceof ImageError) ? cause : err;
	}
}
