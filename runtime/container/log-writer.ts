// Docker's json-file log of one container: lines of both streams as {"log","stream","time"}
// records in container.log, rotated by size (container.log.1 ... .N-1), fed the container's stdout
// and stderr until both end. The data root's log daemon (log-daemon.ts) runs one per container.
import { closeSync, fstatSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { encodeEntry } from "./logs.ts";

// Docker splits lines longer than 16 KiB into several entries; so do we.
const MAX_LINE = 16 * 1024;

export function writeLogs(
	dir: string,
	maxBytes: number,
	maxFiles: number,
	streams: { stdout: Readable; stderr: Readable },
): Promise<void> {
	const path = join(dir, "container.log");
	let fd = openSync(path, "a");
	let size = fstatSync(fd).size;
	const rotate = () => {
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
	};
	const write = (line: string, stream: "stdout" | "stderr") => {
		const buf = encodeEntry(line, stream);
		try {
			if (size > 0 && size + buf.length > maxBytes) rotate();
			writeSync(fd, buf);
			size += buf.length;
		} catch {
			// The container was removed meanwhile, or the disk is full: the line is lost, and the
			// daemon, which writes the other containers' logs too, carries on.
		}
	};
	const follow = (rs: Readable, stream: "stdout" | "stderr") =>
		new Promise<void>((resolve) => {
			let pending = "";
			rs.setEncoding("utf8");
			rs.on("data", (chunk: string) => {
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
			rs.once("end", done);
			rs.once("error", done);
		});
	return Promise.all([follow(streams.stdout, "stdout"), follow(streams.stderr, "stderr")]).then(() => {
		try {
			closeSync(fd);
		} catch {}
	});
}
