// The multi-arch test images (busybox, httpd), built once from Debian's busybox-static and cached
// in .cache/images; parallel test files share one build through a lock.
import { buildTestImages, type TestImages } from "../../scripts/images/index.ts";

export type { TestImages };

export function ensureTestImages(opts: { signal?: AbortSignal } = {}): Promise<TestImages> {
	return buildTestImages(opts);
}
