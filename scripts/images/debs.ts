// Debian's busybox-static .deb for a foreign architecture, fetched with a private apt state so the
// host's dpkg architectures and package lists are left untouched.
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../cli/lab/shell.ts";

export interface DebArch {
	/** Debian architecture name. */
	deb: "amd64" | "arm64" | "armhf";
	os: "linux";
	architecture: "amd64" | "arm64" | "arm";
	variant?: "v8" | "v7";
	/** What `uname -m` prints for a binary of this architecture. */
	machine: "x86_64" | "aarch64" | "armv7l";
}

export const ARCHES: readonly DebArch[] = [
	{ deb: "amd64", os: "linux", architecture: "amd64", machine: "x86_64" },
	{ deb: "arm64", os: "linux", architecture: "arm64", variant: "v8", machine: "aarch64" },
	{ deb: "armhf", os: "linux", architecture: "arm", variant: "v7", machine: "armv7l" },
];

function aptOptions(stateDir: string, arch: string): string[] {
	return [
		"-q",
		"-o",
		`APT::Architecture=${arch}`,
		"-o",
		`APT::Architectures=${arch}`,
		"-o",
		`Dir::State::Lists=${join(stateDir, "lists")}`,
		"-o",
		`Dir::Cache=${join(stateDir, "cache")}`,
		"-o",
		"Dir::State::status=/dev/null",
		"-o",
		"APT::Sandbox::User=root",
	];
}

/** Returns the path of busybox-static_*_ARCH.deb in debDir, downloading it when missing. */
export async function fetchBusyboxDeb(arch: DebArch["deb"], cacheDir: string, signal?: AbortSignal): Promise<string> {
	const debDir = join(cacheDir, "debs", arch);
	mkdirSync(debDir, { recursive: true });
	const have = () => readdirSync(debDir).find((f) => f.startsWith("busybox-static_") && f.endsWith(".deb"));
	const found = have();
	if (found) return join(debDir, found);
	const stateDir = join(cacheDir, "apt", arch);
	for (const d of ["lists/partial", "cache/archives/partial"]) mkdirSync(join(stateDir, d), { recursive: true });
	const opts = aptOptions(stateDir, arch);
	if (!existsSync(join(stateDir, "lists", "lock")) || readdirSync(join(stateDir, "lists")).length < 3) {
		// A mirror mid-sync can fail one index (seen: bookworm-security armhf); the package we need
		// is usually still listed by the others, so go on and let the download decide.
		await run(["apt-get", ...opts, "update"], { signal, allowFailure: true });
	}
	await run(["apt-get", ...opts, "download", "busybox-static"], { cwd: debDir, signal });
	const got = have();
	if (!got) throw new Error(`apt-get download busybox-static for ${arch} produced no .deb in ${debDir}`);
	return join(debDir, got);
}

/** Extracts the busybox binary from the .deb into dir and returns its path. */
export async function extractBusybox(deb: string, dir: string, signal?: AbortSignal): Promise<string> {
	mkdirSync(dir, { recursive: true });
	await run(["dpkg-deb", "-x", deb, dir], { signal });
	const bin = join(dir, "bin", "busybox");
	if (!existsSync(bin)) throw new Error(`${deb} has no bin/busybox`);
	return bin;
}
