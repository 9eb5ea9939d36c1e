// Small durable-file helpers: write-then-rename and mkdir with the fsyncs that make them survive a
// power cut (a rename or a create is durable only once its directory is fsynced).
import { dirname } from "node:path";
import { nodeIO, type StorageIO } from "./io.ts";

/**
 * Replaces `path` atomically and durably (mode 0600): a crash or power cut leaves either the old or
 * the new content, never a mix; once it returns the new content survives a power cut.
 */
export function writeFileAtomic(path: string, data: Uint8Array, io: StorageIO = nodeIO): void {
	const tmp = `${path}.tmp`;
	const fd = io.open(tmp, "w");
	try {
		let off = 0;
		while (off < data.length) off += io.write(fd, data, off, data.length - off);
		io.fsync(fd);
	} finally {
		io.close(fd);
	}
	io.rename(tmp, path);
	io.fsyncDir(dirname(path));
}

/** mkdir -p whose new directories survive a power cut (each one's parent is fsynced). */
export function ensureDir(dir: string, io: StorageIO = nodeIO): void {
	if (io.exists(dir)) return;
	const parent = dirname(dir);
	if (parent !== dir) ensureDir(parent, io);
	io.mkdir(dir);
	io.fsyncDir(parent);
}
