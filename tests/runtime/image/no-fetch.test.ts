// The registry client speaks node:http/https itself: blobs that redirect to another host are
// followed without the credentials, and a pull never loads undici (Node's fetch, Response and
// Headers), which would stay in an agent's memory for good (+15 MB RSS, bench/agent-rss).
import { spawn, spawnSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import t from "tap";
import { tempDir } from "../../helpers/index.ts";
import { fakeRegistry, json } from "./fake-registry.ts";
import { sha, tarOf } from "./tar.ts";

const raw = await tarOf([{ name: "hello.txt", body: "hello" }]);
const layer = gzipSync(raw);
const config = Buffer.from(
	JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [sha(raw)] } }),
);
const manifest = JSON.stringify({
	schemaVersion: 2,
	mediaType: "application/vnd.oci.image.manifest.v1+json",
	config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha(config), size: config.length },
	layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha(layer), size: layer.length }],
});
const good = `Basic ${Buffer.from("alice:s3cret").toString("base64")}`;

t.test("a blob redirected to another host is fetched there without credentials; no undici", async (t) => {
	const cdnAuth: (string | undefined)[] = [];
	const cdn = await fakeRegistry((req, res) => {
		cdnAuth.push(req.headers.authorization);
		if (req.url === "/blob/layer") return res.end(layer);
		if (req.url === "/blob/config") return res.end(config);
		json(res, 404, {});
	});
	t.teardown(cdn.close);
	const reg = await fakeRegistry((req, res) => {
		const url = req.url ?? "";
		if (req.headers.authorization !== good) return json(res, 401, {}, { "www-authenticate": 'Basic realm="fake"' });
		if (url.includes("/manifests/")) {
			res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
			return res.end(manifest);
		}
		const to = url.endsWith(sha(layer)) ? "layer" : url.endsWith(sha(config)) ? "config" : undefined;
		if (!to) return json(res, 404, {});
		res.writeHead(307, { location: `http://${cdn.hostPort}/blob/${to}` });
		res.end();
	});
	t.teardown(reg.close);
	const root = tempDir("img-nofetch-");
	t.teardown(root.remove);
	// A child process: this one (tap) may have loaded undici already.
	const script = `
		import { ImageStore } from ${JSON.stringify(new URL("../../../runtime/index.ts", import.meta.url).href)};
		const s = new ImageStore({ root: ${JSON.stringify(root.path)}, credentials: { ${JSON.stringify(reg.hostPort)}: { username: "alice", password: "s3cret" } } });
		const img = await s.pull(${JSON.stringify(`${reg.hostPort}/app:1`)});
		const undici = process.moduleLoadList.filter((m) => /undici/.test(m));
		process.stdout.write(JSON.stringify({ layers: img.layers.length, undici }));
	`;
	// Not spawnSync: this process serves the registries.
	const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
	let stdout = "";
	let stderr = "";
	child.stdout.on("data", (b: Buffer) => (stdout += b));
	child.stderr.on("data", (b: Buffer) => (stderr += b));
	const status = await new Promise<number | null>((r) => child.once("exit", r));
	const r = { status, stdout, stderr };
	t.equal(r.status, 0, r.stderr);
	const out = JSON.parse(r.stdout || "{}") as { layers?: number; undici?: string[] };
	t.equal(out.layers, 1, "pulled through the redirects");
	t.same(out.undici, [], "without loading undici");
	t.equal(cdnAuth.length, 2, "both blobs came from the other host");
	t.same(cdnAuth, [undefined, undefined], "which was not sent the credentials");

	// Positive control for the undici check: fetch loads it.
	const c = spawnSync(
		process.execPath,
		["-e", "new Response('x'); console.log(process.moduleLoadList.filter((m) => /undici/.test(m)).length)"],
		{ encoding: "utf8" },
	);
	t.ok(Number(c.stdout) > 0, "Response does load undici (the check can see it)");
});
