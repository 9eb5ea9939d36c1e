import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import { platformString, unpackFromRegistry } from "../../cli/lab/registry.ts";
import { buildTestImages, MEDIA } from "../../scripts/images/index.ts";
import { ensureTestImages } from "../helpers/images.ts";
import { tempDir, waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import { withRegistry } from "../helpers/registry.ts";

interface Platform {
	os: string;
	architecture: string;
	variant?: string;
}
interface Index {
	mediaType: string;
	manifests: Array<{ digest: string; platform: Platform }>;
}
const MACHINE: Record<string, string> = {
	"linux/amd64": "x86_64",
	"linux/arm64/v8": "aarch64",
	"linux/arm/v7": "armv7l",
};

t.test("the lab registry serves busybox as an index over three platforms, each of which runs", async (t) => {
	const lab = await withLab(t, { nodes: 2, registry: true });
	t.equal(lab.registryUrl, "http://198.18.0.254:5000");
	const work = tempDir();
	t.teardown(work.remove);
	// Everything is fetched from inside node n1, over the lab's underlay.
	const raw = await lab.exec("n1", [
		"curl",
		"-fsS",
		"--max-time",
		"10",
		"-H",
		`Accept: ${MEDIA.index}`,
		`${lab.registryUrl}/v2/busybox/manifests/latest`,
	]);
	t.equal(raw.code, 0, raw.stderr);
	const index = JSON.parse(raw.stdout) as Index;
	t.equal(index.mediaType, MEDIA.index, "the raw manifest is an OCI image index");
	t.same(index.manifests.map((m) => platformString(m.platform)).sort(), Object.keys(MACHINE).sort());

	for (const m of index.manifests) {
		const p = platformString(m.platform);
		const rootfs = join(work.path, p.replaceAll("/", "-"));
		// Fetches manifest and layer from inside n1, checking each blob's digest, and unpacks it.
		await unpackFromRegistry({
			url: lab.registryUrl!,
			repo: "busybox",
			platform: p,
			destDir: rootfs,
			netns: lab.nodes[0]!.netns,
		});
		const uname = await lab.exec("n1", ["chroot", rootfs, "/bin/busybox", "uname", "-m"]);
		t.equal(uname.stdout.trim(), MACHINE[p], `${p}: busybox uname -m, chrooted (${uname.stderr.trim() || "ok"})`);
	}
});

t.test("the httpd image serves a page naming its hostname", async (t) => {
	const lab = await withLab(t, { nodes: 2, registry: true });
	const work = tempDir();
	t.teardown(work.remove);
	const rootfs = join(work.path, "rootfs");
	mkdirSync(rootfs);
	const { config: raw } = await unpackFromRegistry({
		url: lab.registryUrl!,
		repo: "httpd",
		platform: "linux/amd64",
		destDir: rootfs,
		netns: lab.nodes[0]!.netns,
	});
	const config = raw as { config: { Cmd: string[]; ExposedPorts: Record<string, unknown> } };
	t.same(config.config.Cmd, ["/bin/httpd-start"]);
	t.ok(config.config.ExposedPorts["80/tcp"], "exposes 80/tcp");
	// Run its command as a container would (own UTS namespace and hostname, chrooted) on node n2.
	const server = lab.exec("n2", [
		"unshare",
		"--uts",
		"--fork",
		"sh",
		"-c",
		`hostname web-7 && exec chroot ${rootfs} /bin/httpd-start`,
	]);
	const page = await waitFor(
		"httpd on n2 to answer",
		async () => {
			const r = await lab.exec("n1", ["curl", "-fsS", "--max-time", "2", "http://198.18.0.2:80/"]);
			return r.code === 0 ? r.stdout : undefined;
		},
		{ timeoutMs: 15_000 },
	);
	t.match(page, /hello from web-7/);
	await lab.destroy();
	const ended = await server;
	t.not(ended.code, 0, "the server was stopped by the lab teardown");
});

t.test("image builds are reproducible and cached", async (t) => {
	const shared = await ensureTestImages();
	t.ok(existsSync(shared.archivePath), "the OCI layout archive exists");
	const listing = await run(["tar", "-tf", shared.archivePath]);
	t.match(listing.stdout, /\.\/index\.json/);
	t.match(listing.stdout, /\.\/oci-layout/);
	const t0 = performance.now();
	const again = await ensureTestImages();
	t.ok(performance.now() - t0 < 2000, "a cached build returns quickly");
	t.same(again.digests, shared.digests);
	// A fresh build elsewhere (reusing the downloaded .debs) yields exactly the same digests.
	const other = tempDir();
	t.teardown(other.remove);
	cpSync(join(shared.layoutDir, "..", "debs"), join(other.path, "debs"), { recursive: true });
	const fresh = await buildTestImages({ cacheDir: other.path, force: true });
	t.same(fresh.digests, shared.digests, "same inputs, same digests");
	t.equal(
		createHash("sha256").update(readFileSync(fresh.archivePath)).digest("hex"),
		createHash("sha256").update(readFileSync(shared.archivePath)).digest("hex"),
		"the archive is byte-identical",
	);
});

t.test("a loopback registry for unit tests: seeded and pullable by skopeo", async (t) => {
	const reg = await withRegistry(t);
	const res = await fetch(`${reg.url}/v2/_catalog`);
	t.same(((await res.json()) as { repositories: string[] }).repositories.sort(), ["busybox", "busybox-arm64", "httpd"]);
	const out = tempDir();
	t.teardown(out.remove);
	await run([
		"skopeo",
		"copy",
		"--quiet",
		"--src-tls-verify=false",
		"--override-arch",
		"arm64",
		`docker://${reg.hostPort}/busybox:latest`,
		`oci:${out.path}:busybox`,
	]);
	const idx = JSON.parse(readFileSync(join(out.path, "index.json"), "utf8")) as { manifests: unknown[] };
	t.equal(idx.manifests.length, 1, "skopeo pulled one platform's image");
});
