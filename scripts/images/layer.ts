// Deterministic layer tarballs: sorted entries, fixed owners and times, gzip without a timestamp,
// so the same inputs always give the same digests (tests and caches rely on that).
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import tarStream from "tar-stream";

export type LayerEntry =
	| { type: "directory"; path: string; mode?: number }
	| { type: "file"; path: string; mode?: number; content: Buffer | string }
	| { type: "symlink"; path: string; target: string };

export interface Layer {
	/** gzip-compressed tar. */
	blob: Buffer;
	/** sha256 of the compressed blob (the descriptor digest). */
	digest: string;
	/** sha256 of the uncompressed tar (the config's rootfs.diff_ids entry). */
	diffId: string;
}

export const FIXED_MTIME = new Date("2024-01-01T00:00:00Z");

export const sha256 = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export async function buildLayer(entries: readonly LayerEntry[]): Promise<Layer> {
	const pack = tarStream.pack();
	const chunks: Buffer[] = [];
	pack.on("data", (c: unknown) => {
		chunks.push(c as Buffer);
	});
	const done = new Promise<void>((resolve, reject) => {
		pack.on("end", resolve);
		pack.on("error", reject);
	});
	const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
	const common = { mtime: FIXED_MTIME, uid: 0, gid: 0, uname: "root", gname: "root" };
	for (const e of sorted) {
		if (e.type === "directory") pack.entry({ ...common, name: `${e.path}/`, type: "directory", mode: e.mode ?? 0o755 });
		else if (e.type === "symlink")
			pack.entry({ ...common, name: e.path, type: "symlink", linkname: e.target, mode: 0o777 });
		else pack.entry({ ...common, name: e.path, type: "file", mode: e.mode ?? 0o644 }, Buffer.from(e.content));
	}
	pack.finalize();
	await done;
	const tar = Buffer.concat(chunks);
	const blob = gzipSync(tar, { level: 9 });
	return { blob, digest: sha256(blob), diffId: sha256(tar) };
}
