// The log writer of one container, run by its shim:
//   node log-writer.ts <container dir> <max bytes per file> <max files>
// Reads the container's stdout and stderr from fds 5 and 6 (FIFOs the shim opened) and writes Docker's
// json-file format to container.log, rotated by size (container.log.1 ... .N-1). It ends when
// both FIFOs reach end of file, i.e. when the container and its shim are done with them, so the
// log outlives the agent and the CLI like the container does. Only node:fs, to start fast.
import { closeSync, createReadStream, fstatSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { encodeEntry } from "./logs.ts";

const [dir, maxBytesArg, maxFilesArg] = process.argv.slice(2);
const maxBytes = Number(maxBytesArg);
const maxFiles = Number(maxFilesArg);
const path = join(dir!, "container.log");
let fd = openSync(path, "a");
let size = fstatSync(fd).size;

function rotate(): void {
	closeSync(fd);
	if (maxFiles <= 1) rmSync(path, { force: true });
	else {
		rmSync(`${path}.${maxFiles - 1}`, { force: true });
		for (let i = maxFiles - 2; i >= 1; i--) {
			try {
				renameSync(`${path}.${i}`, `${path}.${i + 1}`);
			} catch {}
		}
		renameSync(path, `${path}.1`);
	}
	fd = openSync(path, "a");
	size = 0;
}

function write(line: string, stream: "stdout" | "stderr"): void {
	const buf = encodeEntry(line, stream);
	if (size > 0 && size + buf.length > maxBytes) rotate();
	writeSync(fd, buf);
	size += buf.length;
}

// Docker splits lines longer than 16 KiB into several entries; so do we.
const MAX_LINE = 16 * 1024;

function follow(src: number, stream: "stdout" | "stderr"): Promise<void> {
	return new Promise((resolve) => {
		let pending = "";
		const rs = createReadStream("", { fd: src, encoding: "utf8" });
		rs.on("data", (chunk) => {
			pending += chunk;
			let nl = pending.indexOf("\n");
			while (nl >= 0) {
				write(pending.slice(0, nl + 1), stream);
				pending = pending.slice(nl + 1);
				nl = pending.indexOf("\n");
			}
			while (pending.length >= MAX_LINE) {
				write(pending.slice(0, MAX_LINE), stream);
				pending = pending.slice(MAX_LINE);
			}
		});
		const done = () => {
			if (pending) write(pending, stream);
			pending = "";
			resolve();
		};
		rs.on("end", done);
		rs.on("error", done);
	});
}

await Promise.all([follow(5, "stdout"), follow(6, "stderr")]);
closeSync(fd);
