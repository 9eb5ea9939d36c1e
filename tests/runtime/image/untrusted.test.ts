// Images are untrusted input: digests and diff ids that would become paths out of the store,
// layers and archives that try to reach host files, bytes that do not match their digests, bombs.
// Each is refused with a named error, and the store is left as it was (checked dir by dir).
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { DigestMismatchError, ImageStore, unpackLayer } from "../../../runtime/index.ts";
import { tempDir } from "../../helpers/index.ts";
import { fakeRegistry, json } from "./fake-registry.ts";
import { type Entry, sha, tarOf, writeGzLayer } from "./tar.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const TAR = "application/vnd.oci.image.layer.v1.tar";

function store(t: Test, o: { maxLayerBytes?: number } = {}): ImageStore {
	const d = tempDir("img-untrusted-");
	t.teardown(d.remove);
	return new ImageStore({ root: d.path, ...o });
}

/** Everything a store holds, dir by dir: after a refused image it must be what it was. */
function contents(s: ImageStore): string[] {
	return ["blobs/sha256", "layers", "images", "tmp"].flatMap((d) =>
		readdirSync(join(s.root, d)).map((f) => `${d}/${f}`),
	);
}

const fileHash = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");

/** The files of an OCI layout for one image with one plain layer; the knobs make it hostile. */
function layoutFiles(
	layer: Buffer,
	o: { diffIds?: unknown[]; badLayerBytes?: boolean; badConfigBytes?: boolean; topDigest?: string } = {},
): Map<string, Buffer> {
	const files = new Map<string, Buffer>();
	const put = (b: Buffer | string, stored: Buffer | string = b) => {
		files.set(`blobs/sha256/${sha(b).slice(7)}`, Buffer.from(stored));
		return { digest: sha(b), size: Buffer.byteLength(b) };
	};
	const cfg = JSON.stringify({
		architecture: "amd64",
		os: "linux",
		rootfs: { type: "layers", diff_ids: o.diffIds ?? [sha(layer)] },
	});
	const manifest = JSON.stringify({
		schemaVersion: 2,
		mediaType: OCI_MANIFEST,
		config: { mediaType: "application/vnd.oci.image.config.v1+json", ...put(cfg, o.badConfigBytes ? `${cfg} ` : cfg) },
		layers: [{ mediaType: TAR, ...put(layer, o.badLayerBytes ? Buffer.concat([layer, Buffer.alloc(512)]) : layer) }],
	});
	const top = put(manifest);
	files.set("oci-layout", Buffer.from(JSON.stringify({ imageLayoutVersion: "1.0.0" })));
	files.set(
		"index.json",
		Buffer.from(
			JSON.stringify({
				schemaVersion: 2,
				manifests: [
					{
						mediaType: OCI_MANIFEST,
						...top,
						digest: o.topDigest ?? top.digest,
						annotations: { "org.opencontainers.image.ref.name": "test/app:1" },
					},
				],
			}),
		),
	);
	return files;
}

function writeDir(t: Test, files: Map<string, Buffer>): string {
	const d = tempDir("img-layout-");
	t.teardown(d.remove);
	for (const [name, body] of files) {
		mkdirSync(join(d.path, name, ".."), { recursive: true });
		writeFileSync(join(d.path, name), body);
	}
	return d.path;
}

async function writeTar(t: Test, entries: Entry[]): Promise<string> {
	const d = tempDir("img-archive-");
	t.teardown(d.remove);
	const p = join(d.path, "image.tar");
	writeFileSync(p, await tarOf(entries));
	return p;
}

const asEntries = (files: Map<string, Buffer>): Entry[] => [...files].map(([name, body]) => ({ name, body }));

const layerOf = () => tarOf([{ name: "hello.txt", body: "hi" }]);

t.test("unpack refuses device nodes, hardlink and symlink tricks and bombs, and leaves nothing", async (t) => {
	const work = tempDir("img-unpack-");
	t.teardown(work.remove);
	const passwd = fileHash("/etc/passwd");
	const cases: Array<[string, Entry[], { name: string; message: RegExp }, number?]> = [
		[
			"block device",
			[{ name: "dev/sda", type: "block-device" }],
			{ name: "UnsafeLayerError", message: /device nodes/ },
		],
		[
			"hardlink to an absolute name",
			[{ name: "h", type: "link", linkname: "/etc/passwd" }],
			{ name: "UnsafeLayerError", message: /absolute path/ },
		],
		[
			"hardlink with an absolute name",
			[
				{ name: "x", body: "x" },
				{ name: "/h", type: "link", linkname: "x" },
			],
			{ name: "UnsafeLayerError", message: /absolute path/ },
		],
		[
			"hardlink to an in-layer symlink that points out",
			[
				{ name: "s", type: "symlink", linkname: "/etc/passwd" },
				{ name: "h", type: "link", linkname: "s" },
			],
			{ name: "UnsafeLayerError", message: /hardlink target s is a symlink/ },
		],
		[
			"file written over an absolute symlink",
			[
				{ name: "s", type: "symlink", linkname: "/etc/passwd" },
				{ name: "s", body: "root::0:0::/:/bin/sh\n" },
			],
			{ name: "UnsafeLayerError", message: /replace the symlink s -> \/etc\/passwd/ },
		],
		[
			"file written over a relative symlink that climbs out",
			[
				{ name: "a/", type: "directory" },
				{ name: "a/s", type: "symlink", linkname: "../../../../../../etc/passwd" },
				{ name: "a/s", body: "root::0:0::/:/bin/sh\n" },
			],
			{ name: "UnsafeLayerError", message: /replace the symlink a\/s -> \.\.\// },
		],
		[
			"uncompressed stream past the bound",
			[{ name: "zeros", body: Buffer.alloc(1 << 20) }],
			{ name: "LayerTooLargeError", message: /more than 65536 bytes/ },
			65536,
		],
	];
	for (const [name, entries, want, maxBytes] of cases) {
		const slug = name.replaceAll(" ", "-");
		const blob = await writeGzLayer(join(work.path, `${slug}.tar.gz`), entries);
		const dest = join(work.path, `out-${slug}`);
		await t.rejects(unpackLayer(blob, "gzip", dest, { maxBytes }), want, name);
		t.notOk(existsSync(dest), `${name}: no destination`);
		t.same(
			readdirSync(work.path).filter((f) => f.includes(".unpack-")),
			[],
			`${name}: no partial dir`,
		);
	}
	t.equal(fileHash("/etc/passwd"), passwd, "the host's /etc/passwd is untouched");
	// Positive controls: what is legitimate in the same shapes still unpacks.
	const okBlob = await writeGzLayer(join(work.path, "ok.tar.gz"), [
		{ name: "f", body: "data" },
		{ name: "h", type: "link", linkname: "f" },
		{ name: "s", type: "symlink", linkname: "f" },
		{ name: "s", body: "replaced" },
		{ name: "zeros", body: Buffer.alloc(1 << 20) },
	]);
	const ok = join(work.path, "ok");
	await unpackLayer(okBlob, "gzip", ok, { maxBytes: 2 << 20 });
	t.equal(readFileSync(join(ok, "h"), "utf8"), "data", "a hardlink to a file");
	t.equal(readFileSync(join(ok, "s"), "utf8"), "replaced", "a file over a symlink that stays inside");
	t.equal(readFileSync(join(ok, "zeros")).length, 1 << 20, "a layer under the bound");
});

t.test("a digest or diff id that is not sha256 hex is refused at load and pull, before it is a path", async (t) => {
	const layer = await layerOf();
	const invalid = { name: "InvalidDigestError", code: "ERR_INVALID_DIGEST" };
	for (const bad of ["sha256:../../../../etc", `sha256:${"A".repeat(64)}`, `sha512:${"a".repeat(64)}`, 7]) {
		const s = store(t);
		await t.rejects(
			s.load(writeDir(t, layoutFiles(layer, { diffIds: [bad] })), { platform: "linux/amd64" }),
			invalid,
			`OCI layout, diff id ${bad}`,
		);
		t.same(contents(s), [], `${bad}: the store holds nothing`);
		t.same(s.list(), [], `${bad}: no image, so no rootfs with that layer`);
	}
	// The ../../etc diff id in a docker save archive.
	const s = store(t);
	const cfg = JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { diff_ids: ["sha256:../../../../etc"] } });
	const saved = await writeTar(t, [
		{ name: "manifest.json", body: JSON.stringify([{ Config: "c.json", RepoTags: ["x/y:1"], Layers: ["l.tar"] }]) },
		{ name: "c.json", body: cfg },
		{ name: "l.tar", body: layer },
	]);
	await t.rejects(s.load(saved), invalid, "docker save, diff id sha256:../../../../etc");
	t.same(contents(s), [], "docker save: the store holds nothing");
	// A manifest digest in index.json.
	await t.rejects(
		s.load(writeDir(t, layoutFiles(layer, { topDigest: "sha256:../../../../etc/passwd" })), {
			platform: "linux/amd64",
		}),
		invalid,
		"index.json digest",
	);
	t.same(contents(s), [], "index.json digest: the store holds nothing");
	// Positive control: the same layout with its real diff id loads, its layer inside the store.
	await s.load(writeDir(t, layoutFiles(layer)), { platform: "linux/amd64" });
	const img = s.resolve("test/app:1", { platform: "linux/amd64" });
	t.ok(img.layerDirs[0]!.startsWith(`${s.root}/layers/`), String(img.layerDirs[0]));
	t.equal(readFileSync(join(img.layerDirs[0]!, "hello.txt"), "utf8"), "hi");

	// Pull: the registry's config names ../../etc as a layer; the layer digest and an index entry too.
	const goodCfg = Buffer.from(
		JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { diff_ids: [sha(layer)] } }),
	);
	const evilCfg = Buffer.from(cfg);
	let mode = "diffid";
	const reg = await fakeRegistry((req, res) => {
		const url = req.url ?? "";
		const c = mode === "diffid" ? evilCfg : goodCfg;
		if (url.includes("/manifests/")) {
			if (mode === "index")
				return json(res, 200, {
					schemaVersion: 2,
					mediaType: "application/vnd.oci.image.index.v1+json",
					manifests: [{ digest: "sha256:../x", platform: { os: "linux", architecture: "amd64" } }],
				});
			const ld = mode === "layer" ? "sha256:../../../../etc" : sha(layer);
			return json(res, 200, {
				schemaVersion: 2,
				mediaType: OCI_MANIFEST,
				config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(c), size: c.length },
				layers: [{ mediaType: TAR, digest: ld, size: layer.length }],
			});
		}
		if (url.endsWith(sha(c).slice(7))) return res.end(c);
		if (url.endsWith(sha(layer).slice(7))) return res.end(layer);
		json(res, 404, {});
	});
	t.teardown(reg.close);
	const p = store(t);
	for (const m of ["diffid", "layer", "index"]) {
		mode = m;
		await t.rejects(p.pull(`${reg.hostPort}/evil:1`, { platform: "linux/amd64" }), invalid, `pull: bad ${m}`);
		t.same(contents(p), [], `pull, bad ${m}: the store holds nothing`);
	}
	mode = "good";
	const pulled = await p.pull(`${reg.hostPort}/evil:1`, { platform: "linux/amd64" });
	t.equal(readFileSync(join(pulled.layerDirs[0]!, "hello.txt"), "utf8"), "hi", "positive control: a good pull");
});

t.test("a layer directory counts only with its marker; one without is removed and redone", async (t) => {
	const layer = await layerOf();
	const s = store(t);
	const hex = sha(layer).slice(7);
	// What a crash mid-unpack (or a store of an older version) leaves: the dir, no marker.
	mkdirSync(join(s.root, "layers", hex, "fs"), { recursive: true });
	writeFileSync(join(s.root, "layers", hex, "fs", "half-written"), "x");
	const dir = writeDir(t, layoutFiles(layer));
	await s.load(dir, { platform: "linux/amd64" });
	const img = s.resolve("test/app:1", { platform: "linux/amd64" });
	t.equal(readFileSync(join(img.layerDirs[0]!, "hello.txt"), "utf8"), "hi", "the layer was unpacked again");
	t.notOk(existsSync(join(img.layerDirs[0]!, "half-written")), "the half-written content is gone");
	t.equal(readFileSync(join(s.root, "layers", hex, "verified"), "utf8"), sha(layer), "the marker names the diff id");
	t.same(readdirSync(join(s.root, "tmp")), [], "no temporary dir left");
	rmSync(join(s.root, "layers", hex, "verified"));
	t.throws(() => s.resolve("test/app:1", { platform: "linux/amd64" }), { code: "ERR_LAYER_MISSING" }, "no marker");
	await s.load(dir, { platform: "linux/amd64" });
	t.ok(s.resolve("test/app:1", { platform: "linux/amd64" }), "loading again restores it");
});

t.test("a diff id mismatch, archive blobs that do not match their digests and bombs leave nothing", async (t) => {
	const layer = await layerOf();
	const mismatch = (t: Test, what: string) => (e: unknown) => {
		t.ok(
			e instanceof DigestMismatchError,
			`${what}: DigestMismatchError (${(e as Error)?.name}: ${(e as Error)?.message})`,
		);
		return true;
	};
	const cases: Array<[string, () => Promise<string>]> = [
		["diff id mismatch", async () => writeDir(t, layoutFiles(layer, { diffIds: [sha("another layer")] }))],
		["OCI layout dir, layer bytes", async () => writeDir(t, layoutFiles(layer, { badLayerBytes: true }))],
		["OCI layout tar, config bytes", () => writeTar(t, asEntries(layoutFiles(layer, { badConfigBytes: true })))],
	];
	for (const [what, make] of cases) {
		const s = store(t);
		const err = await s.load(await make(), { platform: "linux/amd64" }).then(
			() => undefined,
			(e: unknown) => e,
		);
		mismatch(t, what)(err);
		t.same(contents(s), [], `${what}: the store holds nothing`);
	}
	// docker save names its config "<digest hex>.json" and (docker 25+) layers "blobs/sha256/<hex>".
	const cfg = JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { diff_ids: [sha(layer)] } });
	const saves: Array<[string, Entry[]]> = [
		[
			"docker save, config bytes",
			[
				{ name: "manifest.json", body: JSON.stringify([{ Config: `${sha(cfg).slice(7)}.json`, Layers: ["l.tar"] }]) },
				{ name: `${sha(cfg).slice(7)}.json`, body: cfg.replace("amd64", "arm64") },
				{ name: "l.tar", body: layer },
			],
		],
		[
			"docker save, layer bytes",
			[
				{
					name: "manifest.json",
					body: JSON.stringify([{ Config: "c.json", Layers: [`blobs/sha256/${"0".repeat(64)}`] }]),
				},
				{ name: "c.json", body: cfg },
				{ name: `blobs/sha256/${"0".repeat(64)}`, body: layer },
			],
		],
	];
	for (const [what, entries] of saves) {
		const s = store(t);
		const err = await s.load(await writeTar(t, entries)).then(
			() => undefined,
			(e: unknown) => e,
		);
		mismatch(t, what)(err);
		t.same(contents(s), [], `${what}: the store holds nothing`);
	}
	// A layer that unpacks past the store's bound; the default bound takes it (positive control).
	const big = await tarOf([{ name: "zeros", body: Buffer.alloc(1 << 20) }]);
	const small = store(t, { maxLayerBytes: 256 << 10 });
	const bomb = writeDir(t, layoutFiles(big));
	await t.rejects(small.load(bomb, { platform: "linux/amd64" }), {
		name: "LayerTooLargeError",
		code: "ERR_LAYER_TOO_LARGE",
	});
	t.same(contents(small), [], "bomb: the store holds nothing");
	const roomy = store(t);
	await roomy.load(bomb, { platform: "linux/amd64" });
	t.equal(readFileSync(join(roomy.resolve("test/app:1").layerDirs[0]!, "zeros")).length, 1 << 20);
});

t.test("docker save: manifest.json names only the archive's own files, never through a symlink", async (t) => {
	const layer = await layerOf();
	const cfg = JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { diff_ids: [sha(layer)] } });
	// Host files a hostile archive points at: a valid config and layer, so that following works.
	const host = tempDir("img-host-");
	t.teardown(host.remove);
	writeFileSync(join(host.path, "c.json"), cfg);
	writeFileSync(join(host.path, "layer.tar"), layer);
	const manifest = (c: string, l: string) => ({
		name: "manifest.json",
		body: JSON.stringify([{ Config: c, RepoTags: ["x/saved:1"], Layers: [l] }]),
	});
	const refused = { name: "UnsafeArchiveError", code: "ERR_UNSAFE_ARCHIVE" };
	const cases: Array<[string, Entry[], RegExp]> = [
		[
			"config is a symlink to a host file",
			[manifest("c.json", "l.tar"), { name: "c.json", type: "symlink", linkname: join(host.path, "c.json") }],
			/absolute path/,
		],
		[
			"layer under a symlinked directory",
			[
				manifest("c.json", "d/layer.tar"),
				{ name: "c.json", body: cfg },
				{ name: "d", type: "symlink", linkname: host.path },
			],
			/no such file in the archive/,
		],
		[
			"relative symlink that climbs out",
			[
				manifest("c.json", "l.tar"),
				{ name: "c.json", body: cfg },
				{ name: "l.tar", type: "symlink", linkname: `../../../../../../..${host.path}/layer.tar` },
			],
			/out of the archive/,
		],
		["a .. name", [manifest("c.json", "../l.tar"), { name: "c.json", body: cfg }], /contains \.\./],
		["an absolute name", [manifest(join(host.path, "c.json"), "l.tar")], /absolute name/],
	];
	const s = store(t);
	for (const [what, entries, why] of cases) {
		await t.rejects(s.load(await writeTar(t, entries)), { ...refused, message: why }, what);
		t.same(contents(s), [], `${what}: the store holds nothing`);
	}
	// The same as a directory (an unpacked docker save): a symlinked directory is not entered.
	const dir = tempDir("img-saved-dir-");
	t.teardown(dir.remove);
	writeFileSync(join(dir.path, "manifest.json"), manifest("c.json", "d/layer.tar").body);
	writeFileSync(join(dir.path, "c.json"), cfg);
	symlinkSync(host.path, join(dir.path, "d"));
	await t.rejects(s.load(dir.path), { ...refused, message: /no such file in the archive/ }, "directory: symlinked dir");
	t.same(contents(s), [], "directory: the store holds nothing");
	// Positive control: docker save links a repeated layer as ../ID/layer.tar inside the archive.
	const recs = await s.load(
		await writeTar(t, [
			{
				name: "manifest.json",
				body: JSON.stringify([
					{ Config: "c.json", RepoTags: ["x/a:1"], Layers: ["a/layer.tar"] },
					{ Config: "c.json", RepoTags: ["x/b:1"], Layers: ["b/layer.tar"] },
				]),
			},
			{ name: "c.json", body: cfg },
			{ name: "a/layer.tar", body: layer },
			{ name: "b/layer.tar", type: "symlink", linkname: "../a/layer.tar" },
		]),
	);
	t.equal(recs.length, 2);
	t.equal(readFileSync(join(s.resolve("x/b:1").layerDirs[0]!, "hello.txt"), "utf8"), "hi");
	t.same(contents(s).filter((f) => f.startsWith("layers/")).length, 1, "one layer dir for both");
});
