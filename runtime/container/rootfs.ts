// The container's root filesystem: overlayfs with the image layers as read-only lowers and a
// per-container upper/work dir; unmounted (lazily if busy) when the container is removed.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RuntimeError } from "../errors.ts";

/**
 * `rootId`: the host uid/gid of the container's root under a user namespace. The upper dir (so the
 * rootfs' top directory) is then theirs, and the container dir is traversable by them; files of the
 * lower layers stay root-owned, which the container sees as the overflow id (readable, not writable).
 */
export function mountRootfs(layerDirs: string[], dir: string, rootId?: number): string {
	const rootfs = join(dir, "rootfs");
	const upper = join(dir, "upper");
	const work = join(dir, "work");
	for (const d of [rootfs, upper, work]) mkdirSync(d, { recursive: true });
	if (rootId !== undefined) {
		chownSync(upper, rootId, rootId);
		chmodSync(dir, 0o711);
	}
	if (layerDirs.length === 0) throw new RuntimeError("an image needs at least one layer", "ERR_NO_LAYERS");
	// overlayfs lists lowers top first.
	const lower = [...layerDirs].reverse().join(":");
	try {
		execFileSync(
			"mount",
			["-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${upper},workdir=${work}`, rootfs],
			{
				stdio: ["ignore", "ignore", "pipe"],
			},
		);
	} catch (err) {
		throw new RuntimeError(
			`cannot mount the container rootfs: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`,
			"ERR_MOUNT",
		);
	}
	return rootfs;
}

/** `mounts`: /proc/self/mountinfo read once by a caller that checks many paths. */
export function isMounted(path: string, mounts = readFileSync("/proc/self/mountinfo", "utf8")): boolean {
	return mounts.split("\n").some((l) => l.split(" ")[4] === path);
}

export function unmountRootfs(dir: string, mounts?: string): void {
	const rootfs = join(dir, "rootfs");
	if (!isMounted(rootfs, mounts)) return;
	try {
		execFileSync("umount", [rootfs], { stdio: "ignore" });
	} catch {
		// `mounts` may be an older snapshot: gone since is fine.
		if (!isMounted(rootfs)) return;
		execFileSync("umount", ["-l", rootfs], { stdio: "ignore" });
	}
}
