// Test archives built in memory with tar-stream: layers and image archives with exactly the
// entries a case needs (including the hostile ones no real tool writes).
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import tarStream from "tar-stream";

export const sha = (b: Buffer | string) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export type Entry = {
	name: string;
	type?: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device";
	body?: string | Buffer;
	linkname?: string;
};

export async function tarOf(entries: Entry[]): Promise<Buffer> {
	const pack = tarStream.pack();
	const chunks: Buffer[] = [];
	pack.on("data", (c: unknown) => {
		chunks.push(c as Buffer);
	});
	const done = new Promise<void>((r) => pack.on("end", () => r()));
	for (const e of entries) {
		pack.entry(
			{
				name: e.name,
				type: e.type ?? "file",
				linkname: e.linkname,
				mode: e.type === "directory" ? 0o755 : 0o644,
				devmajor: 0,
				devminor: 0,
			},
			e.body ?? "",
		);
	}
	pack.finalize();
	await done;
	return Buffer.concat(chunks);
}

/** Writes a gzipped layer of these entries to path (what unpackLayer(path, "gzip", ...) reads). */
export async function writeGzLayer(path: string, entries: Entry[]): Promise<string> {
	writeFileSync(path, gzipSync(await tarOf(entries)));
	return path;
}
