// Small durable-file helpers: write-then-rename with the fsyncs that make it crash-safe.
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";

export function fsyncDir(dir: string): void {
	const fd = openSync(dir, "r");
	try {
		fsyncSync(fd);
	} finally {
		closeSync(fd);
	}
}

/** Replaces `path` atomically: a crash leaves either the old or the new content, never a mix. */
export function writeFileAtomic(path: string, data: Uint8Array): void {
	const tmp = `${path}.tmp`;
	const fd = openSync(tmp, "w", 0o600);
	try {
		let off = 0;
		while (off < data.length) off += writeSync(fd, data, off, data.length - off);
		fsyncSync(fd);
	} finally {
		closeSync(fd);
	}
	renameSync(tmp, path);
	fsyncDir(dirname(path));
}
