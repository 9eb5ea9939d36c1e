// The file-system calls the durable stores make, behind one narrow interface: node:fs by default,
// and in tests a page-cache model that can lose unsynced writes at a simulated power cut.
import {
	closeSync,
	existsSync,
	fdatasync,
	fdatasyncSync,
	fsyncSync,
	ftruncateSync,
	mkdirSync,
	openSync,
	readdirSync,
	readFileSync,
	renameSync,
	rmSync,
	statSync,
	unlinkSync,
	writeSync,
} from "node:fs";
import { promisify } from "node:util";

/** Every call is synchronous except `fdatasyncAsync` (the log's per-batch sync keeps the event loop free). */
export interface StorageIO {
	/** A missing file throws an error whose `code` is "ENOENT". */
	readFile(path: string): Buffer;
	readdir(dir: string): string[];
	exists(path: string): boolean;
	size(path: string): number;
	/** One level; the parent must exist. */
	mkdir(dir: string): void;
	/** "a" creates or appends, "w" creates or truncates, "r+" opens an existing file; new files get mode 0600. */
	open(path: string, flags: "a" | "w" | "r+"): number;
	write(fd: number, data: Uint8Array, offset: number, length: number): number;
	truncate(fd: number, length: number): void;
	fsync(fd: number): void;
	fdatasync(fd: number): void;
	fdatasyncAsync(fd: number): Promise<void>;
	close(fd: number): void;
	/** Within one directory only. */
	rename(from: string, to: string): void;
	unlink(path: string): void;
	/** rm -rf. */
	removeTree(path: string): void;
	/** Makes the directory's entries (creates, renames, unlinks) durable. */
	fsyncDir(dir: string): void;
}

const fdatasyncP = promisify(fdatasync);

export const nodeIO: StorageIO = {
	readFile: (path) => readFileSync(path),
	readdir: (dir) => readdirSync(dir),
	exists: (path) => existsSync(path),
	size: (path) => statSync(path).size,
	mkdir: (dir) => mkdirSync(dir),
	open: (path, flags) => openSync(path, flags, 0o600),
	write: (fd, data, offset, length) => writeSync(fd, data, offset, length),
	truncate: (fd, length) => ftruncateSync(fd, length),
	fsync: (fd) => fsyncSync(fd),
	fdatasync: (fd) => fdatasyncSync(fd),
	fdatasyncAsync: (fd) => fdatasyncP(fd),
	close: (fd) => closeSync(fd),
	rename: (from, to) => renameSync(from, to),
	unlink: (path) => unlinkSync(path),
	removeTree: (path) => rmSync(path, { recursive: true, force: true }),
	fsyncDir: (dir) => {
		const fd = openSync(dir, "r");
		try {
			fsyncSync(fd);
		} finally {
			closeSync(fd);
		}
	},
};
