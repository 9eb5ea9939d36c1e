// Builds the multi-arch test images from Debian's busybox-static packages, with no internet but
// Debian's mirror: busybox:latest (linux/amd64, linux/arm64/v8, linux/arm/v7, one OCI index) and
// httpd:latest (same platforms; serves a page naming the container's hostname on port 80), and
// busybox-arm64:latest (an index with the arm64 image only, for placement by the image's platforms).
// Output, cached under .cache/images/ until the inputs change: an OCI layout directory and the same
// layout as a tar archive, for offline import. Run directly: `node scripts/images/build.ts`.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../cli/lab/shell.ts";
import { pidAlive } from "../../cli/lab/state.ts";
import { ARCHES, type DebArch, extractBusybox, fetchBusyboxDeb } from "./debs.ts";
import { buildLayer, type Layer, type LayerEntry } from "./layer.ts";
import { type Descriptor, Layout, writeImage, writeImageIndex } from "./oci.ts";

export interface TestImages {
	layoutDir: string;
	archivePath: string;
	/** Names inside the layout (org.opencontainers.image.ref.name) and the registry tags they get. */
	images: { busybox: "busybox:latest"; httpd: "httpd:latest"; busyboxArm64: "busybox-arm64:latest" };
	platforms: Array<{ os: string; architecture: string; variant?: string; machine: string }>;
	/** Digest of each image index, by name. */
	digests: { busybox: string; httpd: string; busyboxArm64: string };
}

const repoRoot = new URL("../..", import.meta.url).pathname;
export const DEFAULT_CACHE = join(repoRoot, ".cache", "images");
const ARCHIVE = "tsswarm-test-images.oci.tar";

const PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP = "root:x:0:\nnogroup:x:65534:\n";
const HTTPD_START = `#!/bin/sh
# Serves a page naming this container's hostname on port \${PORT:-80}; /tmp so a read-only rootfs works.
mkdir -p /tmp/www
printf '<html><body><h1>hello from %s</h1></body></html>\\n' "$(hostname)" > /tmp/www/index.html
exec httpd -f -p "\${PORT:-80}" -h /tmp/www
`;

function busyboxEntries(binary: Buffer, applets: string[]): LayerEntry[] {
	return [
		...["bin", "dev", "etc", "proc", "sys", "usr", "usr/bin", "var"].map((path) => ({
			type: "directory" as const,
			path,
		})),
		{ type: "directory", path: "root", mode: 0o700 },
		{ type: "directory", path: "tmp", mode: 0o1777 },
		{ type: "file", path: "bin/busybox", mode: 0o755, content: binary },
		...applets
			.filter((a) => a !== "busybox")
			.map((a) => ({ type: "symlink" as const, path: `bin/${a}`, target: "busybox" })),
		{ type: "symlink", path: "usr/bin/env", target: "../../bin/busybox" },
		{ type: "file", path: "etc/passwd", content: PASSWD },
		{ type: "file", path: "etc/group", content: GROUP },
	];
}

const httpdEntries: LayerEntry[] = [{ type: "file", path: "bin/httpd-start", mode: 0o755, content: HTTPD_START }];

/** The inputs that decide the output: this folder's sources and the exact .deb files. */
function cacheKey(debs: string[]): string {
	const h = createHash("sha256");
	const dir = new URL(".", import.meta.url).pathname;
	for (const f of readdirSync(dir).sort()) if (f.endsWith(".ts")) h.update(f).update(readFileSync(join(dir, f)));
	for (const d of debs) h.update(basename(d));
	return h.digest("hex");
}

/** A lock directory holding the owner's pid: parallel test files build once; a dead owner's lock is taken over. */
async function withLock<T>(lockDir: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
	for (;;) {
		signal?.throwIfAborted();
		try {
			mkdirSync(lockDir);
			writeFileSync(join(lockDir, "pid"), String(process.pid));
			break;
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
			const pid = Number(readFileSync(join(lockDir, "pid"), { encoding: "utf8", flag: "a+" }) || 0);
			if (pid > 0 && !pidAlive(pid)) rmSync(lockDir, { recursive: true, force: true });
			else await sleep(100);
		}
	}
	try {
		return await work();
	} finally {
		rmSync(lockDir, { recursive: true, force: true });
	}
}

function result(cacheDir: string, stamp: { digests: TestImages["digests"] }): TestImages {
	return {
		layoutDir: join(cacheDir, "layout"),
		archivePath: join(cacheDir, ARCHIVE),
		images: { busybox: "busybox:latest", httpd: "httpd:latest", busyboxArm64: "busybox-arm64:latest" },
		platforms: ARCHES.map((a) => ({ os: a.os, architecture: a.architecture, variant: a.variant, machine: a.machine })),
		digests: stamp.digests,
	};
}

export async function buildTestImages(
	opts: { cacheDir?: string; signal?: AbortSignal; log?: (m: string) => void; force?: boolean } = {},
): Promise<TestImages> {
	const cacheDir = opts.cacheDir ?? DEFAULT_CACHE;
	const log = opts.log ?? (() => {});
	mkdirSync(cacheDir, { recursive: true });
	return withLock(
		join(cacheDir, ".lock"),
		async () => {
			const debs: string[] = [];
			for (const a of ARCHES) debs.push(await fetchBusyboxDeb(a.deb, cacheDir, opts.signal));
			const key = cacheKey(debs);
			const stampPath = join(cacheDir, "stamp.json");
			const stamp = existsSync(stampPath)
				? (JSON.parse(readFileSync(stampPath, "utf8")) as { key: string; digests: TestImages["digests"] })
				: undefined;
			if (
				!opts.force &&
				stamp?.key === key &&
				existsSync(join(cacheDir, ARCHIVE)) &&
				existsSync(join(cacheDir, "layout"))
			) {
				return result(cacheDir, stamp);
			}
			log("building test images from busybox-static for linux/amd64, linux/arm64/v8, linux/arm/v7");
			const work = join(cacheDir, `build.${process.pid}`);
			rmSync(work, { recursive: true, force: true });
			const layout = new Layout(join(work, "layout"));
			const httpdLayer = await buildLayer(httpdEntries);
			const busyboxManifests: Descriptor[] = [];
			const httpdManifests: Descriptor[] = [];
			// The applet list is the same for every architecture of one busybox version; read it from
			// the binary that runs natively here.
			let applets: string[] | undefined;
			for (const [i, arch] of ARCHES.entries()) {
				const bin = await extractBusybox(debs[i]!, join(work, "deb", arch.deb), opts.signal);
				if (!applets) applets = await listApplets(bin, arch);
				const base: Layer = await buildLayer(busyboxEntries(readFileSync(bin), applets));
				busyboxManifests.push(writeImage(layout, arch, [base], { cmd: ["sh"], description: "busybox" }));
				httpdManifests.push(
					writeImage(layout, arch, [base, httpdLayer], {
						cmd: ["/bin/httpd-start"],
						exposedPorts: ["80/tcp"],
						description: "busybox httpd serving its hostname",
					}),
				);
			}
			const busybox = writeImageIndex(layout, busyboxManifests);
			const httpd = writeImageIndex(layout, httpdManifests);
			const arm64 = ARCHES.findIndex((a) => a.architecture === "arm64");
			const busyboxArm64 = writeImageIndex(layout, [busyboxManifests[arm64]!]);
			layout.writeIndex([
				{ name: "busybox", index: busybox },
				{ name: "httpd", index: httpd },
				{ name: "busybox-arm64", index: busyboxArm64 },
			]);
			rmSync(join(work, "deb"), { recursive: true, force: true });
			await run([
				"tar",
				"--sort=name",
				"--mtime=@0",
				"--owner=0",
				"--group=0",
				"--numeric-owner",
				"-C",
				join(work, "layout"),
				"-cf",
				join(work, ARCHIVE),
				".",
			]);
			rmSync(join(cacheDir, "layout"), { recursive: true, force: true });
			renameSync(join(work, "layout"), join(cacheDir, "layout"));
			renameSync(join(work, ARCHIVE), join(cacheDir, ARCHIVE));
			rmSync(work, { recursive: true, force: true });
			const digests = { busybox: busybox.digest, httpd: httpd.digest, busyboxArm64: busyboxArm64.digest };
			writeFileSync(stampPath, JSON.stringify({ key, digests }));
			return result(cacheDir, { digests });
		},
		opts.signal,
	);
}

async function listApplets(bin: string, arch: DebArch): Promise<string[]> {
	if (arch.deb !== "amd64" && process.arch === "x64") throw new Error("list applets from the native binary first");
	const { stdout } = await run([bin, "--list"]);
	return stdout.split("\n").filter((a) => /^[a-z0-9_.[\]-]+$/.test(a));
}

// (No top-level await: the release bundle, which holds the lab and so this file, is CommonJS.)
if (import.meta.main) {
	const force = process.argv.includes("--force");
	void buildTestImages({ force, log: (m) => process.stderr.write(`${m}\n`) }).then((images) => {
		process.stdout.write(`${JSON.stringify(images, null, 2)}\n`);
	});
}
