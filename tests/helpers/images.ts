// The multi-arch test images (busybox, httpd), built once from Debian's busybox-static and cached
// in .cache/images; parallel test files share one build through a lock.
import { execFileSync } from "node:child_process";
import { buildTestImages, type TestImages } from "../../scripts/images/index.ts";

export type { TestImages };

export function ensureTestImages(opts: { signal?: AbortSignal } = {}): Promise<TestImages> {
	return buildTestImages(opts);
}

/**
 * The test archive's amd64 busybox as a docker-save archive at `out` (docker 20.10 loads only
 * those), for a peer dockerd that gets the same image as ours.
 */
export function busyboxDockerArchive(archivePath: string, out: string): string {
	return testImageDockerArchive(archivePath, out, "busybox");
}

/** The same for any image of the test archive (busybox, httpd), tagged `<image>:latest`. */
export function testImageDockerArchive(archivePath: string, out: string, image: "busybox" | "httpd"): string {
	execFileSync("skopeo", [
		"copy",
		"--quiet",
		"--override-arch",
		"amd64",
		`oci-archive:${archivePath}:${image}`,
		`docker-archive:${out}:${image}:latest`,
	]);
	return out;
}
