// Files that must survive a power cut whole (identity, cluster state, the node directory): write
// a temporary file, fsync it, rename it over the old one, fsync the directory.
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { dirname } from "node:path";

export function writeFileDurable(path: string, data: string | Uint8Array, mode = 0o600): void {
	const tmp = `${path}.tmp`;
	const fd = openSync(tmp, "w", mode);
	try {
		writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
		fsyncSync(fd);
	} finally {
		closeSync(fd);
	}
	renameSync(tmp, path);
	const dir = openSync(dirname(path), "r");
	try {
		fsyncSync(dir);
	} finally {
		closeSync(dir);
	}
}
