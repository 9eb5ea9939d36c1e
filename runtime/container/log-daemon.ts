// The log writer of a data root: one detached Node process that turns the output of all of its
// running containers into their json-file logs (log-writer.ts) and records their exit codes.
//   node log-daemon.ts <data root>   (the release executable: tsswarm __log-daemon <data root>)
// It replaces a Node process per container (~40 MB and a Node start-up each, which competed with
// runc for the cores). Started on demand (logd-client.ts), one per root (an flock held for life),
// it listens on ROOT/logd.sock; at start it adopts the
// FIFOs of every container that is still running, so it may be killed or restarted at any time:
// the shell shim holds both FIFOs open read-write while runc runs, so the pipes and what they
// buffer outlive a writer. It exits once no container has needed it for IDLE_MS.
//
// A container's end: the shim writes runc's code to runc.exit and closes its FIFO ends; with runc
// and the container gone too, both FIFOs read EOF once drained, and only then the code is renamed
// into place as exitcode (what wait() watches for), so the log is complete when the exit shows.
import { execFileSync } from "node:child_process";
import {
	closeSync,
	constants,
	existsSync,
	openSync,
	readdirSync,
	readFileSync,
	renameSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import { createServer, Socket } from "node:net";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { LogdRequestError } from "../errors.ts";
import { writeLogs } from "./log-writer.ts";
import { type LogJob, logdAddress, logdPidFile, readLogJob } from "./logd-client.ts";
import { procStart } from "./proc.ts";

const IDLE_MS = 10_000;
const ID_RE = /^[a-f0-9]{64}$/;
// A request is one id and a newline: a longer line, a line that is not an id, or a client idle
// for CONN_IDLE_MS ends that connection (logged), so no client can make the daemon buffer or wait.
const MAX_LINE = 65;
const MAX_CONNECTIONS = 64;
const CONN_IDLE_MS = 5_000;

function logError(err: Error): void {
	process.stderr.write(
		`${new Date().toISOString()} ${err.name} ${(err as { code?: string }).code ?? ""}: ${err.message}\n`,
	);
}

/** Copies one container's FIFOs into its log until both end, then records the exit code. */
async function follow(dir: string, job: LogJob): Promise<void> {
	const open = (name: string) => {
		const fd = openSync(join(dir, name), constants.O_RDONLY | constants.O_NONBLOCK);
		// Linux reports hang-up on a FIFO only to readers that have seen a writer come and go: open
		// and close one, so that a pipe whose writers had all gone already reads EOF, not silence.
		closeSync(openSync(join(dir, name), constants.O_WRONLY | constants.O_NONBLOCK));
		return fd;
	};
	const outR = open("out.fifo");
	const errR = open("err.fifo");
	await writeLogs(dir, job.logMaxSize, job.logMaxFiles, {
		stdout: new Socket({ fd: outR, readable: true, writable: false }),
		stderr: new Socket({ fd: errR, readable: true, writable: false }),
	});
	let code: string;
	try {
		code = readFileSync(join(dir, "runc.exit"), "utf8").trim();
	} catch {
		return; // the shim died before runc ended: the code is lost (Runtime.refresh says so)
	}
	if (!/^\d+$/.test(code)) return;
	writeFileSync(join(dir, "exitcode.tmp"), code);
	renameSync(join(dir, "exitcode.tmp"), join(dir, "exitcode"));
	if (job.autoRemove) autoRemove(dir, job);
}

/** docker run -d --rm: nobody is waiting, so the container is removed here once it has ended. */
function autoRemove(dir: string, job: LogJob): void {
	const id = dir.slice(dir.lastIndexOf("/") + 1);
	const runcRoot = job.runc[job.runc.indexOf("--root") + 1];
	if (runcRoot && existsSync(join(runcRoot, id))) {
		try {
			execFileSync(job.runc[0]!, [...job.runc.slice(1), "delete", "--force", id], { stdio: "ignore" });
		} catch {}
	}
	try {
		execFileSync("umount", [join(dir, "rootfs")], { stdio: "ignore" });
	} catch {
		try {
			execFileSync("umount", ["-l", join(dir, "rootfs")], { stdio: "ignore" });
		} catch {}
	}
	rmSync(dir, { recursive: true, force: true });
}

function serve(root: string): void {
	const active = new Set<string>();
	let idle: NodeJS.Timeout | undefined;
	const server = createServer();
	const armIdle = () => {
		clearTimeout(idle);
		if (active.size > 0) return;
		idle = setTimeout(() => {
			// Clients whose hand-off is cut here get no "ok" and start a successor.
			server.close();
			try {
				if (readFileSync(logdPidFile(root), "utf8").startsWith(`${process.pid} `)) rmSync(logdPidFile(root));
			} catch {}
			process.exit(0);
		}, IDLE_MS);
	};
	const adopt = (dir: string): void => {
		if (active.has(dir) || existsSync(join(dir, "exitcode"))) return;
		// fifos.open: the shim holds the FIFOs, so an empty pipe reads "no data yet", not EOF.
		const job = existsSync(join(dir, "fifos.open")) ? readLogJob(dir) : undefined;
		if (!job) return;
		active.add(dir);
		clearTimeout(idle);
		follow(dir, job)
			.catch((err: Error) => process.stderr.write(`${new Date().toISOString()} ${dir}: ${err.message}\n`))
			.finally(() => {
				active.delete(dir);
				armIdle();
			});
	};
	server.maxConnections = MAX_CONNECTIONS;
	server.on("connection", (conn) => {
		let buf = "";
		const refuse = (why: string) => {
			logError(new LogdRequestError(why));
			conn.destroy();
		};
		conn.setEncoding("latin1");
		conn.setTimeout(CONN_IDLE_MS, () => refuse(`no request within ${CONN_IDLE_MS} ms`));
		conn.on("error", () => {});
		conn.on("data", (d: string) => {
			buf += d;
			for (let nl = buf.indexOf("\n"); nl >= 0 && !conn.destroyed; nl = buf.indexOf("\n")) {
				// Only an id: nothing a client sends may name a path or a program; both come from
				// the data root.
				const id = buf.slice(0, nl);
				buf = buf.slice(nl + 1);
				if (!ID_RE.test(id)) return refuse(`not a container id: ${JSON.stringify(id.slice(0, 80))}`);
				adopt(join(root, "containers", id));
				conn.write("ok\n");
			}
			if (buf.length >= MAX_LINE) refuse(`a line longer than ${MAX_LINE - 1} bytes`);
		});
	});
	// This process holds logd.lock (spawnLogd), so a socket already there is a dead daemon's.
	server.once("error", () => {
		rmSync(logdAddress(root), { force: true });
		server.listen(logdAddress(root));
	});
	server.listen(logdAddress(root));
	server.once("listening", () => {
		writeFileSync(`${logdPidFile(root)}.tmp`, `${process.pid} ${procStart(process.pid)}`);
		renameSync(`${logdPidFile(root)}.tmp`, logdPidFile(root));
		const containers = join(root, "containers");
		for (const id of existsSync(containers) ? readdirSync(containers) : [])
			if (ID_RE.test(id)) adopt(join(containers, id));
		armIdle();
	});
}

/**
 * The daemon's command line: `<data root>`. It runs in V8's interpreter only (no optimizing
 * compiler; the flag is set before any of its own code is hot): copying lines is I/O-bound, and
 * TurboFan maps its own code (6 MB of the executable) and keeps what it compiled. Measured, release
 * binary: 52 instead of 59 MB RSS beside 10 idle containers (bench/agent-rss); 10 containers
 * printing 100,000 lines each, 60 instead of 73-76 MB after, for 1.5x the CPU per line (244k vs
 * 370k lines/s on this 2-core host).
 */
export function main(argv: string[]): void {
	setFlagsFromString("--no-opt");
	serve(argv[0]!);
}

if (import.meta.main) main(process.argv.slice(2));
