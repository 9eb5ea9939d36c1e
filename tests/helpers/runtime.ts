// One container runtime per test file: its own data root and cgroup parent, the test images
// loaded before the first test, and everything (containers, cgroups, files) removed at the end,
// pass or fail.
import t from "tap";
import { Runtime, type RuntimeOptions, stopLogDaemon } from "../../runtime/index.ts";
import { ensureTestImages } from "./images.ts";
import { removeCgroup, tempDir, uniqueName } from "./index.ts";

export function fileRuntime(
	prefix: string,
	o: { platforms?: string[] } & Partial<Omit<RuntimeOptions, "root" | "cgroupParent">> = {},
): { rt: Runtime; dir: { path: string }; cgroupParent: string } {
	const { platforms = ["linux/amd64"], ...opts } = o;
	const dir = tempDir(`${prefix}-`);
	const cgroupParent = uniqueName(`tsw-${prefix.slice(0, 3)}`);
	const rt = new Runtime({ ...opts, root: dir.path, cgroupParent });
	t.teardown(async () => {
		for (const c of rt.list({ all: true })) await rt.remove(c.id, { force: true }).catch(() => {});
		// The root's log daemon would exit once idle; end it now, as the test made it.
		await stopLogDaemon(dir.path);
		removeCgroup(cgroupParent);
		dir.remove();
	});
	t.before(async () => {
		const images = await ensureTestImages();
		for (const platform of platforms) await rt.images.load(images.archivePath, { platform });
	});
	return { rt, dir, cgroupParent };
}
