// The shim of one container: a detached Node process that runs `runc run` in the foreground, writes
// its output to the json-file log and its exit code next to the container's state, so the
// container outlives whoever started it.
//   node shim.ts            reads one JSON line (a ShimJob) from stdin, then runs it
// A Runtime keeps one shim started ahead ("warm"), so that a start costs a line on a pipe instead
// of a Node start-up (~25 ms); a warm shim whose Runtime goes away sees stdin end and exits.
//
// The container's stdout and stderr are FIFOs (made at prepare), not sockets: /dev/stdout and
// friends must open inside the container. Exit code last, after the log has everything.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, constants, existsSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { setPriority } from "node:os";
import { join } from "node:path";
import { writeLogs } from "./log-writer.ts";

export interface ShimJob {
	dir: string;
	/** runc and its global flags (e.g. --root); `run --bundle DIR ID` is added. */
	runc: string[];
	id: string;
	logMaxSize: number;
	logMaxFiles: number;
	autoRemove: boolean;
}

function readJob(): Promise<ShimJob | undefined> {
	return new Promise((resolve) => {
		let buf = "";
		const onData = (d: Buffer) => {
			buf += d;
			const nl = buf.indexOf("\n");
			if (nl < 0) return;
			process.stdin.off("data", onData);
			process.stdin.pause();
			process.stdin.destroy();
			resolve(JSON.parse(buf.slice(0, nl)) as ShimJob);
		};
		process.stdin.on("data", onData);
		process.stdin.once("end", () => resolve(undefined));
	});
}

async function run(job: ShimJob): Promise<void> {
	const fifo = (name: string) => join(job.dir, name);
	// Read ends first, non-blocking, so that opening the write ends does not wait for a reader.
	const outR = openSync(fifo("out.fifo"), constants.O_RDONLY | constants.O_NONBLOCK);
	const errR = openSync(fifo("err.fifo"), constants.O_RDONLY | constants.O_NONBLOCK);
	const outW = openSync(fifo("out.fifo"), constants.O_WRONLY);
	const errW = openSync(fifo("err.fifo"), constants.O_WRONLY);
	const child = spawn(job.runc[0]!, [...job.runc.slice(1), "run", "--bundle", job.dir, job.id], {
		stdio: ["ignore", outW, errW],
	});
	closeSync(outW);
	closeSync(errW);
	const exited = new Promise<number>((resolve) => {
		child.once("error", () => resolve(127));
		child.once("exit", (code, sig) => resolve(code ?? 128 + (sig === "SIGKILL" ? 9 : 15)));
	});
	const logs = writeLogs(job.dir, job.logMaxSize, job.logMaxFiles, {
		stdout: new Socket({ fd: outR, readable: true, writable: false }),
		stderr: new Socket({ fd: errR, readable: true, writable: false }),
	});
	const code = await exited;
	await logs;
	writeFileSync(fifo("exitcode.tmp"), String(code));
	renameSync(fifo("exitcode.tmp"), fifo("exitcode"));
	if (job.autoRemove) {
		// docker run -d --rm: nobody is waiting, so the shim removes the container itself.
		const runcRoot = job.runc[job.runc.indexOf("--root") + 1];
		if (runcRoot && existsSync(join(runcRoot, job.id))) {
			try {
				execFileSync(job.runc[0]!, [...job.runc.slice(1), "delete", "--force", job.id], { stdio: "ignore" });
			} catch {}
		}
		try {
			execFileSync("umount", [join(job.dir, "rootfs")], { stdio: "ignore" });
		} catch {
			try {
				execFileSync("umount", ["-l", join(job.dir, "rootfs")], { stdio: "ignore" });
			} catch {}
		}
		rmSync(job.dir, { recursive: true, force: true });
	}
}

const job = await readJob();
if (job) {
	// A spare waits at low priority (runtime.ts); runc and the container must not inherit that.
	try {
		setPriority(0);
	} catch {}
	await run(job);
}
