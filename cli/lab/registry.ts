// A real OCI registry (Debian's docker-registry, distribution 2.8) on loopback or inside a lab
// namespace, seeded with the multi-arch test images by skopeo (`--all` keeps the image indexes).
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { buildTestImages } from "../../scripts/images/index.ts";
import { LabError } from "./errors.ts";
import { REGISTRY_ADDRESS, REGISTRY_PORT } from "./names.ts";
import { run } from "./shell.ts";

export interface RegistryOptions {
	dataDir: string;
	host: string;
	port: number;
	/** Run it inside this network namespace (its address must be `host`). */
	netns?: string;
	/** Let the registry outlive this process (a persistent lab); it is then stopped by pid or by netns. */
	detached?: boolean;
	signal?: AbortSignal;
}

export interface RunningRegistry {
	url: string;
	hostPort: string;
	pid: number;
	stop(): Promise<void>;
}

const inNetns = (netns: string | undefined, argv: string[]) => (netns ? ["ip", "netns", "exec", netns, ...argv] : argv);

export async function startRegistry(o: RegistryOptions): Promise<RunningRegistry> {
	mkdirSync(join(o.dataDir, "storage"), { recursive: true });
	const hostPort = `${o.host}:${o.port}`;
	const config = join(o.dataDir, "config.yml");
	writeFileSync(
		config,
		[
			"version: 0.1",
			"log:",
			"  level: warn",
			"  accesslog:",
			"    disabled: true",
			"storage:",
			"  filesystem:",
			`    rootdirectory: ${join(o.dataDir, "storage")}`,
			"  delete:",
			"    enabled: true",
			"http:",
			`  addr: ${hostPort}`,
			"",
		].join("\n"),
	);
	// Its output goes to a file, not a pipe: a pipe would break when a detached registry's parent exits.
	const logFd = openSync(join(o.dataDir, "registry.log"), "a");
	const argv = inNetns(o.netns, ["docker-registry", "serve", config]);
	const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", logFd, logFd], detached: o.detached ?? false });
	closeSync(logFd);
	if (o.detached) child.unref();
	const pid = child.pid;
	if (pid === undefined) throw new LabError("could not start docker-registry", "ERR_REGISTRY");
	let exited = false;
	child.once("exit", () => {
		exited = true;
	});
	const stop = async () => {
		if (exited) return;
		try {
			process.kill(pid, "SIGTERM");
		} catch {
			return;
		}
		for (let i = 0; i < 100 && !exited; i++) await sleep(20);
		if (!exited) {
			try {
				process.kill(pid, "SIGKILL");
			} catch {}
		}
	};
	const url = `http://${hostPort}`;
	try {
		const deadline = Date.now() + 15_000;
		for (;;) {
			o.signal?.throwIfAborted();
			if (exited)
				throw new LabError(`docker-registry exited at start; see ${join(o.dataDir, "registry.log")}`, "ERR_REGISTRY");
			const r = await run(inNetns(o.netns, ["curl", "-fsS", "--max-time", "1", "-o", "/dev/null", `${url}/v2/`]), {
				allowFailure: true,
			});
			if (r.code === 0) break;
			if (Date.now() > deadline)
				throw new LabError(`docker-registry did not answer at ${url}/v2/ within 15 s`, "ERR_REGISTRY");
			await sleep(50);
		}
	} catch (err) {
		await stop();
		throw err;
	}
	return { url, hostPort, pid, stop };
}

/** Pushes busybox:latest and httpd:latest (all platforms, index intact) into the registry. */
export async function pushTestImages(
	hostPort: string,
	opts: { netns?: string; signal?: AbortSignal } = {},
): Promise<{ busybox: string; httpd: string }> {
	const images = await buildTestImages({ signal: opts.signal });
	for (const name of ["busybox", "httpd"] as const) {
		await run(
			inNetns(opts.netns, [
				"skopeo",
				"copy",
				"--all",
				"--quiet",
				"--dest-tls-verify=false",
				"--preserve-digests",
				`oci:${images.layoutDir}:${name}`,
				`docker://${hostPort}/${name}:latest`,
			]),
			{ signal: opts.signal },
		);
	}
	return { busybox: `${hostPort}/busybox:latest`, httpd: `${hostPort}/httpd:latest` };
}

/** The lab's registry at 198.18.0.254:5000 inside its own namespace, seeded, outliving the caller. */
export async function startLabRegistry(o: {
	netns: string;
	dataDir: string;
	signal?: AbortSignal;
}): Promise<RunningRegistry> {
	const reg = await startRegistry({ ...o, host: REGISTRY_ADDRESS, port: REGISTRY_PORT, detached: true });
	try {
		await pushTestImages(reg.hostPort, { netns: o.netns, signal: o.signal });
	} catch (err) {
		await reg.stop();
		throw err;
	}
	return reg;
}
