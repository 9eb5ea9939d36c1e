import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, zstdCompressSync } from "node:zlib";
import t, { type Test } from "tap";
import { run } from "../../../cli/lab/index.ts";
import {
	DigestMismatchError,
	ImageNotFoundError,
	ImageStore,
	InvalidPlatformError,
	InvalidReferenceError,
	PlatformNotFoundError,
	parsePlatform,
	parseReference,
	RegistryError,
	UnsafeLayerError,
	UnsupportedMediaTypeError,
	unpackLayer,
} from "../../../runtime/index.ts";
import { ensureTestImages } from "../../helpers/images.ts";
import { tempDir } from "../../helpers/index.ts";
import { withRegistry } from "../../helpers/registry.ts";
import { fakeRegistry, json } from "./fake-registry.ts";
import { type Entry, sha, tarOf, writeGzLayer } from "./tar.ts";

function store(t: Test): ImageStore {
	const d = tempDir("img-store-");
	t.teardown(d.remove);
	return new ImageStore({ root: d.path });
}

t.test("references and platforms: parsed like docker, bad ones named", async (t) => {
	t.same(parseReference("busybox"), {
		registry: "registry-1.docker.io",
		repository: "library/busybox",
		tag: "latest",
		digest: undefined,
		canonical: "docker.io/library/busybox:latest",
	});
	t.equal(parseReference("127.0.0.1:5000/team/app:v1.2").canonical, "127.0.0.1:5000/team/app:v1.2");
	t.equal(parseReference("localhost/app").registry, "localhost");
	const d = `sha256:${"a".repeat(64)}`;
	t.equal(parseReference(`198.18.0.254:5000/busybox@${d}`).digest, d);
	for (const bad of ["", "UPPER/case", "app:bad tag", `app@sha256:${"z".repeat(64)}`, "a//b"])
		t.throws(() => parseReference(bad), InvalidReferenceError, bad);
	t.same(parsePlatform("linux/arm64"), { os: "linux", architecture: "arm64", variant: "v8" });
	t.same(parsePlatform("linux/arm"), { os: "linux", architecture: "arm", variant: "v7" });
	t.same(parsePlatform("linux/x86_64"), { os: "linux", architecture: "amd64", variant: undefined });
	for (const bad of ["linux", "linux/arm/v9", "Linux/AMD64", "a/b/c/d"])
		t.throws(() => parsePlatform(bad), InvalidPlatformError, bad);
});

t.test("pull from a real registry: platform selection, verified layers, reuse, remove and prune", async (t) => {
	const reg = await withRegistry(t);
	const s = store(t);
	const events: string[] = [];
	const amd = await s.pull(`${reg.hostPort}/busybox:latest`, {
		platform: "linux/amd64",
		onProgress: (p) => events.push(p.status),
	});
	t.ok(events.includes("downloading") && events.includes("done"), "progress events");
	t.ok(existsSync(join(amd.layerDirs[0]!, "bin", "busybox")));
	t.ok(lstatSync(join(amd.layerDirs[0]!, "bin", "sh")).isSymbolicLink(), "symlinks preserved");
	t.equal(lstatSync(join(amd.layerDirs[0]!, "tmp")).mode & 0o7777, 0o1777, "modes preserved (sticky /tmp)");
	const arm = await s.pull(`${reg.hostPort}/busybox:latest`, { platform: "linux/arm/v7" });
	t.equal(arm.platform.architecture, "arm");
	const out = await run([join(arm.layerDirs[0]!, "bin", "busybox"), "uname", "-m"]);
	t.equal(out.stdout.trim(), "armv7l", "the armv7 layer really is armv7 (runs through qemu)");
	const again: string[] = [];
	await s.pull(`${reg.hostPort}/busybox:latest`, { platform: "linux/amd64", onProgress: (p) => again.push(p.status) });
	t.same(again, ["exists"], "a second pull reuses the layer");
	await t.rejects(s.pull(`${reg.hostPort}/busybox:latest`, { platform: "linux/riscv64" }), PlatformNotFoundError);
	await t.rejects(s.pull(`${reg.hostPort}/nothere:latest`), ImageNotFoundError);
	t.equal(s.resolve(`${reg.hostPort}/busybox`, { platform: "linux/amd64" }).id, amd.id);
	t.throws(
		() => s.resolve(`${reg.hostPort}/busybox`, { platform: "linux/arm64" }),
		ImageNotFoundError,
		"not pulled for arm64",
	);
	s.remove(`${reg.hostPort}/busybox:latest`);
	t.equal(s.list().length, 0);
	const pruned = s.prune();
	t.ok(pruned.blobs >= 3 && pruned.layers === 2, `prune freed ${pruned.blobs} blobs and ${pruned.layers} layers`);
	t.same(readdirSync(join(s.root, "layers")), []);
});

t.test("offline import: the OCI layout archive and a docker save archive", async (t) => {
	const images = await ensureTestImages();
	const s = store(t);
	const recs = await s.load(images.archivePath, { platform: "linux/arm64" });
	// The arm64-only index shares busybox's arm64 image: one record under both names.
	t.same([...new Set(recs.flatMap((r) => r.refs))].sort(), [
		"docker.io/library/busybox-arm64:latest",
		"docker.io/library/busybox:latest",
		"docker.io/library/httpd:latest",
	]);
	t.equal(s.resolve("busybox", { platform: "linux/arm64" }).platform.architecture, "arm64");
	// docker save: manifest.json + config + uncompressed layer tar.
	const work = tempDir();
	t.teardown(work.remove);
	const layer = await tarOf([{ name: "hello.txt", body: "hi" }]);
	const config = JSON.stringify({
		architecture: "amd64",
		os: "linux",
		config: { Cmd: ["cat", "/hello.txt"] },
		rootfs: { type: "layers", diff_ids: [sha(layer)] },
	});
	mkdirSync(join(work.path, "l1"));
	writeFileSync(join(work.path, "l1", "layer.tar"), layer);
	writeFileSync(join(work.path, "cfg.json"), config);
	writeFileSync(
		join(work.path, "manifest.json"),
		JSON.stringify([{ Config: "cfg.json", RepoTags: ["saved/app:1"], Layers: ["l1/layer.tar"] }]),
	);
	const archive = join(work.path, "saved.tar");
	await run(["tar", "-cf", archive, "-C", work.path, "manifest.json", "cfg.json", "l1"]);
	const [rec] = await s.load(archive);
	t.same(rec!.refs, ["docker.io/saved/app:1"]);
	const img = s.resolve("saved/app:1", { platform: "linux/amd64" });
	t.equal(readFileSync(join(img.layerDirs[0]!, "hello.txt"), "utf8"), "hi");
	// docker save of an arm64 image: the config says arm64 with no variant, which is arm64/v8.
	const armCfg = JSON.stringify({
		architecture: "arm64",
		os: "linux",
		config: { Cmd: ["true"] },
		rootfs: { type: "layers", diff_ids: [sha(layer)] },
	});
	writeFileSync(join(work.path, "cfg-arm.json"), armCfg);
	writeFileSync(
		join(work.path, "manifest.json"),
		JSON.stringify([{ Config: "cfg-arm.json", RepoTags: ["saved/arm:1"], Layers: ["l1/layer.tar"] }]),
	);
	await run(["tar", "-cf", archive, "-C", work.path, "manifest.json", "cfg-arm.json", "l1"]);
	await s.load(archive);
	t.same(s.resolve("saved/arm:1", { platform: "linux/arm64" }).platform, {
		os: "linux",
		architecture: "arm64",
		variant: "v8",
	});
	t.same(s.resolve("saved/arm:1", { platform: "linux/arm64/v8" }).id, sha(armCfg));
	// A diff id count that does not match the layers is refused.
	writeFileSync(
		join(work.path, "manifest.json"),
		JSON.stringify([{ Config: "cfg-arm.json", RepoTags: ["saved/bad:1"], Layers: ["l1/layer.tar", "l1/layer.tar"] }]),
	);
	await run(["tar", "-cf", archive, "-C", work.path, "manifest.json", "cfg-arm.json", "l1"]);
	await t.rejects(s.load(archive), { code: "ERR_BAD_IMAGE" });
});

/** An OCI layout directory with one image whose index entry carries `annotations`. */
function ociLayout(dir: string, layer: Buffer, annotations: Record<string, string>, diffIds = [sha(layer)]): void {
	const blobs = join(dir, "blobs", "sha256");
	mkdirSync(blobs, { recursive: true });
	const put = (b: Buffer | string) => {
		writeFileSync(join(blobs, sha(b).slice(7)), b);
		return { digest: sha(b), size: Buffer.byteLength(b) };
	};
	const cfg = JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: diffIds } });
	const manifest = JSON.stringify({
		schemaVersion: 2,
		mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: { mediaType: "application/vnd.oci.image.config.v1+json", ...put(cfg) },
		layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...put(layer) }],
	});
	writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
	writeFileSync(
		join(dir, "index.json"),
		JSON.stringify({
			schemaVersion: 2,
			manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...put(manifest), annotations }],
		}),
	);
}

t.test("OCI layout names: a bare tag needs a repository, full names and bare names are kept", async (t) => {
	const layer = await tarOf([{ name: "x", body: "x" }]);
	const s = store(t);
	const mk = (annotations: Record<string, string>, diffIds?: string[]) => {
		const d = tempDir();
		t.teardown(d.remove);
		ociLayout(d.path, layer, annotations, diffIds);
		return d.path;
	};
	const tagOnly = mk({ "org.opencontainers.image.ref.name": "latest" });
	await t.rejects(s.load(tagOnly, { platform: "linux/amd64" }), { code: "ERR_NAME_REQUIRED", message: /--name/ });
	t.same(s.list(), [], "nothing stored under a made-up name");
	const [a] = await s.load(tagOnly, { platform: "linux/amd64", name: "team/app" });
	t.same(a!.refs, ["docker.io/team/app:latest"], "the tag goes with the repository given");
	const [b] = await s.load(mk({ "org.opencontainers.image.ref.name": "1.36" }), {
		platform: "linux/amd64",
		name: "127.0.0.1:5000/tools",
	});
	// The same manifest each time, so one record collects the names.
	t.ok(b!.refs.includes("127.0.0.1:5000/tools:1.36"), b!.refs.join(" "));
	const [c] = await s.load(mk({ "org.opencontainers.image.ref.name": "ghcr.io/acme/web:2" }), {
		platform: "linux/amd64",
	});
	t.ok(c!.refs.includes("ghcr.io/acme/web:2"), "a full reference is used as is");
	const [d] = await s.load(mk({ "org.opencontainers.image.ref.name": "busybox" }), { platform: "linux/amd64" });
	t.ok(d!.refs.includes("docker.io/library/busybox:latest"), "a bare name (skopeo oci:DIR:NAME) gets :latest");
	t.equal(s.resolve("team/app").id, s.resolve("ghcr.io/acme/web:2").id);
	await t.rejects(s.load(tagOnly, { name: "team/app:1" }), { code: "ERR_INVALID_REFERENCE" });
	await t.rejects(
		s.load(mk({ "org.opencontainers.image.ref.name": "x/y:1" }, [sha(layer), sha(layer)]), { platform: "linux/amd64" }),
		{ code: "ERR_BAD_IMAGE", message: /config lists 2 layers, manifest 1/ },
	);
});

t.test("unsafe layers are refused, named, and leave nothing behind", async (t) => {
	const work = tempDir();
	t.teardown(work.remove);
	const cases: Array<[string, Entry[], RegExp]> = [
		["dotdot", [{ name: "../escape.txt", body: "x" }], /path contains \.\./],
		["absolute", [{ name: "/etc/evil", body: "x" }], /absolute path/],
		[
			"symlink escape",
			[
				{ name: "evil", type: "symlink", linkname: "/etc" },
				{ name: "evil/passwd", body: "root::0:0" },
			],
			/through the symlink evil/,
		],
		["hardlink escape", [{ name: "h", type: "link", linkname: "../../etc/passwd" }], /path contains \.\./],
		["hardlink to nothing", [{ name: "h", type: "link", linkname: "missing" }], /not a file in this layer/],
		["device node", [{ name: "dev/sda", type: "character-device" }], /device nodes are not allowed/],
	];
	for (const [name, entries, why] of cases) {
		const blob = await writeGzLayer(join(work.path, `${name.replaceAll(" ", "-")}.tar.gz`), entries);
		const dest = join(work.path, `out-${name.replaceAll(" ", "-")}`);
		const err = await unpackLayer(blob, "gzip", dest).then(
			() => undefined,
			(e: unknown) => e,
		);
		t.ok(err instanceof UnsafeLayerError, `${name}: UnsafeLayerError`);
		t.match((err as Error).message, why, name);
		t.notOk(existsSync(dest), `${name}: no destination`);
		t.same(
			readdirSync(work.path).filter((f) => f.includes(".unpack-")),
			[],
			`${name}: no partial dir`,
		);
	}
	t.notOk(existsSync("/etc/evil"), "nothing was written outside");
});

t.test("file capabilities (binary security.capability xattrs) survive unpack byte for byte", async (t) => {
	const work = tempDir();
	t.teardown(work.remove);
	const src = join(work.path, "src");
	mkdirSync(src);
	await run(["cp", "/bin/true", join(src, "bindtool")]);
	// cap_setuid is bit 7: its byte is 0x80, which a UTF-8 decode of the pax value would mangle.
	await run(["setcap", "cap_net_bind_service,cap_setuid=+ep", join(src, "bindtool")]);
	const hexCap = async (f: string) =>
		(await run(["getfattr", "-e", "hex", "-n", "security.capability", f])).stdout.split("\n")[1] ?? "";
	const want = await hexCap(join(src, "bindtool"));
	t.match(want, /^security\.capability=0x0100000280/, `the source file has the capability (${want})`);
	const blob = join(work.path, "l.tar");
	await run(["tar", "--xattrs", "--xattrs-include=*", "-cf", blob, "-C", src, "."]);
	const dest = join(work.path, "layer");
	await unpackLayer(blob, "none", dest);
	t.equal(await hexCap(join(dest, "bindtool")), want, "the xattr bytes are identical");
	const caps = await run(["getcap", join(dest, "bindtool")]);
	t.equal(caps.stdout.trim(), `${join(dest, "bindtool")} cap_setuid,cap_net_bind_service=ep`);
});

t.test("whiteouts and opaque directories become overlayfs markers", async (t) => {
	const work = tempDir();
	t.teardown(work.remove);
	const blob = await writeGzLayer(join(work.path, "l.tar.gz"), [
		{ name: "etc/", type: "directory" },
		{ name: "etc/.wh.motd" },
		{ name: "var/", type: "directory" },
		{ name: "var/.wh..wh..opq" },
	]);
	const dest = join(work.path, "layer");
	await unpackLayer(blob, "gzip", dest);
	const wh = lstatSync(join(dest, "etc", "motd"));
	t.ok(wh.isCharacterDevice() && wh.rdev === 0, "whiteout = char device 0/0");
	const xattr = await run(["getfattr", "--only-values", "-n", "trusted.overlay.opaque", join(dest, "var")]);
	t.equal(xattr.stdout, "y", "opaque dir marked");
	t.notOk(existsSync(join(dest, "var", ".wh..wh..opq")));
});

t.test("registry failures: digest mismatch, dropped connection, auth, 404, 500, unknown media type", async (t) => {
	const rawLayer = await tarOf([{ name: "a", body: "a" }]);
	const layer = gzipSync(rawLayer);
	const realDigest = sha(layer);
	const config = Buffer.from(
		JSON.stringify({
			architecture: "amd64",
			os: "linux",
			rootfs: { type: "layers", diff_ids: [sha(gzipSync.length ? await tarOf([{ name: "a", body: "a" }]) : "")] },
		}),
	);
	let mode = "";
	let tokenAsked = 0;
	const manifest = (layerType = "application/vnd.oci.image.layer.v1.tar+gzip") =>
		JSON.stringify({
			schemaVersion: 2,
			mediaType: "application/vnd.oci.image.manifest.v1+json",
			config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
			layers: [{ mediaType: layerType, digest: realDigest, size: layer.length }],
		});
	const reg = await fakeRegistry((req, res) => {
		const url = req.url ?? "";
		if (url.startsWith("/token")) {
			tokenAsked++;
			return json(res, 200, { token: "t0k" });
		}
		if (mode === "auth" && req.headers.authorization !== "Bearer t0k") {
			return json(
				res,
				401,
				{},
				{
					"www-authenticate": `Bearer realm="http://${reg.hostPort}/token",service="fake",scope="repository:app:pull"`,
				},
			);
		}
		if (mode === "500") return json(res, 500, { errors: [] });
		if (url.startsWith("/v2/missing/")) return json(res, 404, { errors: [{ code: "MANIFEST_UNKNOWN" }] });
		if (url.includes("/manifests/")) {
			const m = mode === "media" ? manifest("application/x-weird") : manifest();
			res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
			return res.end(m);
		}
		if (url.endsWith(sha(config))) return res.end(config);
		if (url.endsWith(realDigest)) {
			if (mode === "mismatch") return res.end(gzipSync("not the layer"));
			if (mode === "drop") {
				res.writeHead(200, { "content-length": layer.length });
				res.write(layer.subarray(0, 10));
				setTimeout(() => res.socket?.destroy(), 20);
				return;
			}
			return res.end(layer);
		}
		json(res, 404, { errors: [{ code: "BLOB_UNKNOWN" }] });
	});
	t.teardown(reg.close);
	const s = store(t);
	const ref = `${reg.hostPort}/app:1`;
	// After a failed pull the store holds nothing at all: no blob (manifest, config, layer, partial), no temp.
	const noPartials = () => [
		...readdirSync(join(s.root, "blobs", "sha256")),
		...readdirSync(join(s.root, "tmp")),
		...readdirSync(join(s.root, "layers")),
	];
	mode = "mismatch";
	await t.rejects(s.pull(ref), DigestMismatchError);
	t.same(noPartials(), [], "a mismatching blob is not kept");
	mode = "drop";
	await t.rejects(s.pull(ref), { code: "ERR_REGISTRY_DROPPED" });
	t.same(noPartials(), [], "a half blob is not kept");
	mode = "500";
	await t.rejects(s.pull(ref), RegistryError);
	t.same(noPartials(), [], "a 500 leaves nothing");
	mode = "media";
	await t.rejects(s.pull(ref), UnsupportedMediaTypeError);
	t.same(noPartials(), [], "an unknown media type leaves nothing");
	t.same(s.list(), [], "no failed pull left an image behind");
	t.same(readdirSync(join(s.root, "layers")), [], "nor a layer");
	mode = "auth";
	const img = await s.pull(ref);
	t.ok(tokenAsked >= 1, "the bearer challenge was followed and the pull succeeded");
	t.equal(img.layers[0]!.digest, realDigest);
	await t.rejects(s.pull(`${reg.hostPort}/missing:1`), ImageNotFoundError, "404 names the image");
});

t.test("basic auth (right and wrong credentials), zstd layers, and the same layer twice in one image", async (t) => {
	const rawA = await tarOf([{ name: "a.txt", body: "a".repeat(5000) }]);
	const rawB = await tarOf([{ name: "b.txt", body: "b" }]);
	const zA = zstdCompressSync(rawA);
	const gB = gzipSync(rawB);
	const config = Buffer.from(
		JSON.stringify({
			architecture: "amd64",
			os: "linux",
			rootfs: { type: "layers", diff_ids: [sha(rawA), sha(rawB), sha(rawA)] },
		}),
	);
	const zstdType = "application/vnd.oci.image.layer.v1.tar+zstd";
	const manifest = JSON.stringify({
		schemaVersion: 2,
		mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
		layers: [
			{ mediaType: zstdType, digest: sha(zA), size: zA.length },
			{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha(gB), size: gB.length },
			{ mediaType: zstdType, digest: sha(zA), size: zA.length },
		],
	});
	const good = `Basic ${Buffer.from("alice:s3cret").toString("base64")}`;
	const blobGets: string[] = [];
	const reg = await fakeRegistry((req, res) => {
		const url = req.url ?? "";
		if (req.headers.authorization !== good)
			return json(res, 401, { errors: [{ code: "UNAUTHORIZED" }] }, { "www-authenticate": 'Basic realm="fake"' });
		if (url.includes("/manifests/")) {
			res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
			return res.end(manifest);
		}
		blobGets.push(url);
		// Slow the first layer down so that parallel workers would overlap on a duplicate.
		if (url.endsWith(sha(zA))) return void setTimeout(() => res.end(zA), 50);
		if (url.endsWith(sha(gB))) return res.end(gB);
		if (url.endsWith(sha(config))) return res.end(config);
		json(res, 404, {});
	});
	t.teardown(reg.close);
	const ref = `${reg.hostPort}/app:1`;
	const root = tempDir("img-store-");
	t.teardown(root.remove);
	const wrong = new ImageStore({
		root: root.path,
		credentials: { [reg.hostPort]: { username: "alice", password: "nope" } },
	});
	await t.rejects(wrong.pull(ref), { code: "ERR_REGISTRY_AUTH", message: /access denied .*HTTP 401/ });
	const none = new ImageStore({ root: root.path });
	await t.rejects(none.pull(ref), { code: "ERR_REGISTRY_AUTH", message: /requires credentials/ });
	t.same(readdirSync(join(root.path, "blobs", "sha256")), [], "failed auth leaves no blob");
	const right = new ImageStore({
		root: root.path,
		credentials: { [reg.hostPort]: { username: "alice", password: "s3cret" } },
	});
	const img = await right.pull(ref);
	t.equal(img.layerDirs.length, 3);
	t.equal(img.layerDirs[0], img.layerDirs[2], "the repeated layer is one directory");
	t.equal(readFileSync(join(img.layerDirs[0]!, "a.txt"), "utf8"), "a".repeat(5000), "the zstd layer unpacked");
	t.equal(blobGets.filter((u) => u.endsWith(sha(zA))).length, 1, "and was downloaded once");
	t.same(
		readdirSync(join(root.path, "layers")).filter((f) => f.includes(".")),
		[],
		"no temporary unpack dir is left",
	);
});

t.test("https registry: trusted through certs.d/HOST:PORT/ca.crt, refused with a clear error without it", async (t) => {
	const pki = tempDir("pki-");
	t.teardown(pki.remove);
	const p = (f: string) => join(pki.path, f);
	// A throwaway CA and a server certificate for 127.0.0.1 signed by it.
	await run(
		["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tsswarm test CA"].concat([
			"-keyout",
			p("ca.key"),
			"-out",
			p("ca.crt"),
		]),
	);
	await run([
		"openssl",
		"req",
		"-newkey",
		"rsa:2048",
		"-nodes",
		"-subj",
		"/CN=127.0.0.1",
		"-keyout",
		p("srv.key"),
		"-out",
		p("srv.csr"),
	]);
	writeFileSync(p("ext.cnf"), "subjectAltName=IP:127.0.0.1\n");
	await run(
		["openssl", "x509", "-req", "-in", p("srv.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key")].concat([
			"-CAcreateserial",
			"-days",
			"1",
			"-extfile",
			p("ext.cnf"),
			"-out",
			p("srv.crt"),
		]),
	);
	const reg = await withRegistry(t, { tls: { certificate: p("srv.crt"), key: p("srv.key"), ca: p("ca.crt") } });
	t.match(reg.url, /^https:/);
	const root = tempDir("img-tls-");
	t.teardown(root.remove);
	const certsDir = join(root.path, "certs.d");
	const ref = `${reg.hostPort}/busybox:latest`;
	const untrusted = new ImageStore({ root: join(root.path, "a"), certsDir, extraCAs: [] });
	mkdirSync(join(certsDir, reg.hostPort), { recursive: true });
	writeFileSync(join(certsDir, reg.hostPort, "other.txt"), "not a cert");
	await t.rejects(untrusted.pull(ref, { platform: "linux/amd64" }), { code: "ERR_REGISTRY_TLS", message: /ca\.crt/ });
	writeFileSync(join(certsDir, reg.hostPort, "ca.crt"), readFileSync(p("ca.crt")));
	const trusted = new ImageStore({ root: join(root.path, "b"), certsDir });
	const img = await trusted.pull(ref, { platform: "linux/amd64" });
	t.ok(existsSync(join(img.layerDirs[0]!, "bin", "busybox")), "pulled over https with the CA from certs.d");
	// A CA given as an option works too (the certs.d entry without a .crt only says "this one is https").
	const emptyCerts = join(root.path, "certs2.d");
	mkdirSync(join(emptyCerts, reg.hostPort), { recursive: true });
	const viaOption = new ImageStore({
		root: join(root.path, "c"),
		certsDir: emptyCerts,
		extraCAs: [readFileSync(p("ca.crt"), "utf8")],
	});
	t.equal((await viaOption.pull(ref, { platform: "linux/amd64" })).id, img.id, "extraCAs");

	// One TLS context per registry, not one per request: each of ~270 roots costs native memory
	// that stays (~1.5 MB a connection, measured). In a fresh process: 12 more pulls after 2.
	const script = `
		import { readFileSync } from "node:fs";
		import { ImageStore } from ${JSON.stringify(new URL("../../../runtime/index.ts", import.meta.url).href)};
		const anon = () => Number(/RssAnon:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]) / 1024;
		const s = new ImageStore({ root: ${JSON.stringify(join(root.path, "d"))}, certsDir: ${JSON.stringify(certsDir)} });
		for (let i = 0; i < 2; i++) await s.pull(${JSON.stringify(ref)}, { platform: "linux/amd64" });
		const before = anon();
		// At once: each on a connection of its own (a worker's pulls are minutes apart: new ones too).
		await Promise.all(Array.from({ length: 12 }, () => s.pull(${JSON.stringify(ref)}, { platform: "linux/amd64" })));
		process.stdout.write(JSON.stringify({ grewMb: anon() - before }));
	`;
	const child = await run([process.execPath, "--input-type=module", "-e", script], { allowFailure: true });
	const { grewMb } = JSON.parse(child.stdout || "{}") as { grewMb?: number };
	t.ok(grewMb !== undefined && grewMb < 8, `12 https pulls grew the heap by ${grewMb?.toFixed(1)} MB (< 8)`);
});
