// The entries of an image archive (an OCI layout or a `docker save`, as a .tar or a directory),
// looked up by name without ever following a symlink on disk: names come from the archive's own
// index.json / manifest.json, i.e. from whoever made it, and must not reach the host's files.
import { createHash } from "node:crypto";
import { closeSync, createReadStream, createWriteStream, lstatSync, openSync, readlinkSync, readSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { UnsafeArchiveError } from "./errors.ts";
import { type Compression, loadTar } from "./unpack.ts";

type Entry = { kind: "file"; path: string } | { kind: "symlink" | "hardlink"; target: string };

export interface ArchiveFiles {
	/** The path of the regular file the archive holds under `name`, or UnsafeArchiveError. */
	file(name: string): string;
	has(name: string): boolean;
}

/** An entry name as a clean relative path ("./a//b" -> "a/b"), or undefined when absolute or with "..". */
function clean(base: string, raw: string): string | undefined {
	if (raw.startsWith("/")) return undefined;
	const out = base ? base.split("/") : [];
	for (const p of raw.split("/")) {
		if (p === "..") {
			if (out.length === 0) return undefined;
			out.pop();
		} else if (p !== "" && p !== ".") out.push(p);
	}
	return out.join("/");
}

/**
 * Resolves `name` among the archive's entries. A symlink or hardlink entry is followed only by its
 * name, inside the archive (docker save links repeated layers as "../ID/layer.tar"): a target that
 * is absolute or leaves the archive is refused, and only a regular file is an answer.
 */
function resolve(lookup: (name: string) => Entry | undefined, name: string): string {
	if (typeof name !== "string") throw new UnsafeArchiveError(String(name), "not a name");
	if (name.startsWith("/")) throw new UnsafeArchiveError(name, "absolute name");
	let cur = clean("", name);
	if (cur === undefined || name.split("/").includes("..")) throw new UnsafeArchiveError(name, "name contains ..");
	for (let hops = 0; hops < 8; hops++) {
		const e = lookup(cur);
		if (!e) throw new UnsafeArchiveError(name, "no such file in the archive");
		if (e.kind === "file") return e.path;
		if (e.target.startsWith("/")) throw new UnsafeArchiveError(name, `links to the absolute path ${e.target}`);
		const next = clean(e.kind === "symlink" ? cur.split("/").slice(0, -1).join("/") : "", e.target);
		if (next === undefined) throw new UnsafeArchiveError(name, `links to ${e.target}, out of the archive`);
		cur = next;
	}
	throw new UnsafeArchiveError(name, "too many links");
}

/** A directory: every component is lstat'ed, so a symlinked directory is never entered. */
export function dirArchive(dir: string): ArchiveFiles {
	const lookup = (name: string): Entry | undefined => {
		const parts = name.split("/");
		let cur = dir;
		for (const [i, p] of parts.entries()) {
			cur = join(cur, p);
			const st = lstatSync(cur, { throwIfNoEntry: false });
			if (!st) return undefined;
			if (i < parts.length - 1) {
				if (!st.isDirectory()) return undefined;
			} else if (st.isFile()) return { kind: "file", path: cur };
			else if (st.isSymbolicLink()) return { kind: "symlink", target: readlinkSync(cur) };
		}
		return undefined;
	};
	return archiveOf(lookup);
}

function archiveOf(lookup: (name: string) => Entry | undefined): ArchiveFiles {
	return {
		file: (name) => resolve(lookup, name),
		has: (name) => {
			try {
				resolve(lookup, name);
				return true;
			} catch {
				return false;
			}
		},
	};
}

/** gzip, zstd or plain, by the file's magic bytes (docker save does not say). */
export function sniffCompression(path: string): Compression {
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
 * A .tar (plain, gzip or zstd): its regular files are written to `tmp` under numbers, so nothing the
 * archive names becomes a path; symlinks and hardlinks are kept as names; anything else is dropped.
 */
export async function tarArchive(path: string, tmp: string): Promise<ArchiveFiles> {
	const { tar, zlib } = await loadTar();
	const entries = new Map<string, Entry>();
	const extract = tar.extract();
	const source = createReadStream(path);
	const comp = sniffCompression(path);
	const stages: Readable[] = [source];
	if (comp === "gzip") stages.push(zlib.createGunzip());
	else if (comp === "zstd") stages.push(zlib.createZstdDecompress());
	const feeding = pipeline([...stages, extract] as unknown as [Readable, NodeJS.WritableStream]);
	let n = 0;
	try {
		for await (const entry of extract) {
			const h = entry.header;
			const name = clean("", h.name);
			if (!name || h.name.split("/").includes("..")) {
				entry.resume();
				continue;
			}
			if (h.type === "file" || h.type === "contiguous-file") {
				const dest = join(tmp, String(n++));
				await pipeline(entry, createWriteStream(dest, { flags: "wx", mode: 0o600 }));
				entries.set(name, { kind: "file", path: dest });
				continue;
			}
			if (h.type === "symlink") entries.set(name, { kind: "symlink", target: h.linkname ?? "" });
			else if (h.type === "link") entries.set(name, { kind: "hardlink", target: h.linkname ?? "" });
			else entries.delete(name);
			entry.resume();
		}
		await feeding;
	} catch (err) {
		extract.destroy();
		source.destroy();
		await feeding.catch(() => {});
		throw err;
	}
	return archiveOf((name) => entries.get(name));
}

export async function hashFile(path: string): Promise<string> {
	const h = createHash("sha256");
	for await (const c of createReadStream(path)) h.update(c as Buffer);
	return `sha256:${h.digest("hex")}`;
}
