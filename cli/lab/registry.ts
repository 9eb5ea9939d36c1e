// A real OCI registry (Debian's docker-registry, distribution 2.8) on loopback or inside a lab
// namespace, seeded with the multi-arch test images by skopeo (`--all` keeps the image indexes).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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
	/** Serve https with this certificate and key (PEM files); `ca` verifies it in the readiness probe. */
	tls?: { certificate: string; key: string; ca: string };
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
			...(o.tls ? ["  tls:", `    certificate: ${o.tls.certificate}`, `    key: ${o.tls.key}`] : []),
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
	const url = `${o.tls ? "https" : "http"}://${hostPort}`;
	const caArgs = o.tls ? ["--cacert", o.tls.ca] : [];
	try {
		const deadline = Date.now() + 15_000;
		for (;;) {
			o.signal?.throwIfAborted();
			if (exited)
				throw new LabError(`docker-registry exited at start; see ${join(o.dataDir, "registry.log")}`, "ERR_REGISTRY");
			const r = await run(
				inNetns(o.netns, ["curl", "-fsS", ...caArgs, "--max-time", "1", "-o", "/dev/null", `${url}/v2/`]),
				{
					allowFailure: true,
				},
			);
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

/** Pushes busybox:latest, httpd:latest (all platforms, index intact) and busybox-arm64:latest into the registry. */
export async function pushTestImages(
	hostPort: string,
	opts: { netns?: string; signal?: AbortSignal } = {},
): Promise<{ busybox: string; httpd: string; busyboxArm64: string }> {
	const images = await buildTestImages({ signal: opts.signal });
	for (const name of ["busybox", "httpd", "busybox-arm64"] as const) {
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
	return {
		busybox: `${hostPort}/busybox:latest`,
		httpd: `${hostPort}/httpd:latest`,
		busyboxArm64: `${hostPort}/busybox-arm64:latest`,
	};
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

export interface ImagePlatform {
	os: string;
	architecture: string;
	variant?: string;
}

export const platformString = (p: ImagePlatform) => [p.os, p.architecture, p.variant].filter(Boolean).join("/");

/**
 * Reads an image's raw OCI index from a registry and unpacks one platform's layers into destDir,
 * fetching over HTTP from inside `netns` (for the lab) or from here. A plain client for the lab
 * and its tests, independent of runtime/ so it can check what runtime/ pulls.
 */
export async function unpackFromRegistry(o: {
	url: string;
	repo: string;
	platform: string;
	destDir: string;
	netns?: string;
	signal?: AbortSignal;
}): Promise<{ index: { manifests: Array<{ digest: string; platform: ImagePlatform }> }; config: unknown }> {
	const curl = async (path: string, accept: string, out?: string) => {
		const argv = ["curl", "-fsS", "--max-time", "20", "-H", `Accept: ${accept}`, ...(out ? ["-o", out] : [])];
		const r = await run(inNetns(o.netns, [...argv, `${o.url}${path}`]), { signal: o.signal, allowFailure: true });
		if (r.code !== 0) throw new LabError(`GET ${o.url}${path} failed: ${r.stderr.trim()}`, "ERR_REGISTRY");
		return r.stdout;
	};
	const index = JSON.parse(await curl(`/v2/${o.repo}/manifests/latest`, "application/vnd.oci.image.index.v1+json")) as {
		manifests: Array<{ digest: string; platform: ImagePlatform }>;
	};
	const entry = index.manifests.find((m) => platformString(m.platform) === o.platform);
	if (!entry) throw new LabError(`${o.repo} has no ${o.platform} image`, "ERR_REGISTRY");
	const manifest = JSON.parse(
		await curl(`/v2/${o.repo}/manifests/${entry.digest}`, "application/vnd.oci.image.manifest.v1+json"),
	) as { config: { digest: string }; layers: Array<{ digest: string }> };
	mkdirSync(o.destDir, { recursive: true });
	for (const [i, layer] of manifest.layers.entries()) {
		const blob = join(o.destDir, `.layer${i}.tar.gz`);
		await curl(`/v2/${o.repo}/blobs/${layer.digest}`, "*/*", blob);
		const got = `sha256:${createHash("sha256").update(readFileSync(blob)).digest("hex")}`;
		if (got !== layer.digest) throw new LabError(`layer ${layer.digest} arrived as ${got}`, "ERR_REGISTRY_DIGEST");
		await run(["tar", "-xzf", blob, "-C", o.destDir], { signal: o.signal });
		rmSync(blob);
	}
	const config = JSON.parse(await curl(`/v2/${o.repo}/blobs/${manifest.config.digest}`, "*/*")) as unknown;
	return { index, config };
}
