// `npm run release`: one executable per platform, dist/tsswarm-VERSION-linux-{amd64,arm64}, plus
// SHA256SUMS and install.sh beside them. The code is bundled (esbuild) into one CommonJS file and
// injected (postject) into the matching Node binary as a single-executable application; see README.
//   node scripts/release/build.ts [--out DIR] [--platforms amd64,arm64]
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
	copyFileSync,
	existsSync,
	mkdirSync,
	readFileSync,
	renameSync,
	rmSync,
	statSync,
	writeFileSync,
} from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { build, type Plugin } from "esbuild";

const repo = new URL("../..", import.meta.url).pathname;
const NODE_VERSION = process.versions.node;
// The sentinel Node looks for to know a blob was injected (documented with single-executable applications).
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

export const PLATFORMS = { amd64: "x64", arm64: "arm64" } as const;
export type Platform = keyof typeof PLATFORMS;

export interface ReleaseOptions {
	out: string;
	platforms?: Platform[];
	/** Where downloaded Node packages are kept (default .cache/release, or TSSWARM_RELEASE_CACHE). */
	cache?: string;
	/** Use only cached Node packages (tests: bootstrap fetches them); refuse to download. */
	offline?: boolean;
	log?: (line: string) => void;
	/** The version fixed in the binaries (default: package.json's; the CLI takes TSSWARM_VERSION). */
	version?: string;
	/** V8/Node flags fixed in the binaries (default SEA_EXEC_ARGV; NODE_OPTIONS still adds to them). */
	execArgv?: string[];
}

/**
 * V8 flags of the release, for a small device (bench/agent-rss, one agent after init, amd64):
 * --optimize-for-size (smaller heap growth steps, less inlining, bytecode flushed sooner) -5 MB
 * RSS; --max-semi-space-size=1 (a 1 MiB young generation instead of up to 8) -1 to -2 MB;
 * --no-maglev (no mid-tier compiler: its code pages and compiled code) -1.4 to -3.3 MB and
 * --no-sparkplug (no baseline code) -1.6 to -2.3 MB more per agent of a 3-node lab, same runs; hot
 * code still goes to TurboFan (msgpackr round-trips of 30 task records: 8.0-8.6k/s vs 8.5-8.7k/s);
 * --bytecode-old-age=2 (bytecode not run for 2 full GCs is dropped, instead of 6: the start-up's
 * module initialisers, run once) -2.2 to -2.6 MB, with msgpackr and API writes as fast as before.
 */
export const SEA_EXEC_ARGV = [
	"--optimize-for-size",
	"--max-semi-space-size=1",
	"--no-maglev",
	"--no-sparkplug",
	"--bytecode-old-age=2",
];

export interface Release {
	version: string;
	bundle: string;
	binaries: Record<string, string>;
	sums: string;
}

export async function release(o: ReleaseOptions): Promise<Release> {
	const log = o.log ?? (() => {});
	const version =
		o.version ?? (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string }).version;
	if (!/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/.test(version))
		throw new Error(`release version "${version}" is not a semantic version (e.g. 0.2.0 or 0.2.0-rc.1)`);
	const cache = o.cache ?? defaultCache();
	const work = join(o.out, ".build");
	mkdirSync(work, { recursive: true });
	const bundle = join(work, "tsswarm.cjs");
	await bundleCli(bundle, version);
	log(`bundled ${bundle} (${mb(bundle)})`);

	const execArgv = o.execArgv ?? SEA_EXEC_ARGV;
	const binaries: Record<string, string> = {};
	for (const platform of o.platforms ?? (Object.keys(PLATFORMS) as Platform[])) {
		const node = nodeBinary(PLATFORMS[platform], cache, log, o.offline ?? false);
		const name = `tsswarm-${version}-linux-${platform}`;
		const exe = join(o.out, name);
		const tmp = `${exe}.tmp`;
		copyFileSync(node, tmp);
		strip(tmp, platform, log);
		// A code cache is V8's compiled bundle; only the target's own Node can make it, and only the
		// host's runs here at full speed (the arm64 one would need qemu): arm64 compiles at start.
		const native = PLATFORMS[platform] === process.arch;
		const blob = join(work, `${platform}.blob`);
		const config = join(work, `${platform}.sea.json`);
		writeFileSync(
			config,
			JSON.stringify({
				main: bundle,
				output: blob,
				disableExperimentalSEAWarning: true,
				useCodeCache: native,
				useSnapshot: false,
				execArgv,
			}),
		);
		// The code cache is made under the same V8 flags, or V8 rejects it at start (its flag hash).
		execFileSync(native ? tmp : process.execPath, [...execArgv, "--experimental-sea-config", config], {
			stdio: "pipe",
		});
		// postject ships no types; its API is one function.
		const { inject } = createRequire(import.meta.url)("postject") as {
			inject(file: string, name: string, data: Buffer, o: { sentinelFuse: string }): Promise<void>;
		};
		await inject(tmp, "NODE_SEA_BLOB", readFileSync(blob), { sentinelFuse: FUSE });
		renameSync(tmp, exe);
		binaries[platform] = exe;
		log(`wrote ${exe} (${mb(exe)})`);
	}
	const installer = join(o.out, "install.sh");
	copyFileSync(join(repo, "install.sh"), installer);
	const files = [...Object.values(binaries), installer];
	const sums = join(o.out, "SHA256SUMS");
	writeFileSync(sums, files.map((f) => `${sha256(f)}  ${f.slice(o.out.length + 1)}\n`).join(""));
	rmSync(work, { recursive: true, force: true });
	return { version, bundle, binaries, sums };
}

/** The CLI, agent and helpers in one CommonJS file (what Node 24 runs as a single-executable app). */
async function bundleCli(outfile: string, version: string): Promise<void> {
	const shim = join(outfile, "..", "import-meta.cjs");
	// import.meta has no meaning in CommonJS: its url becomes the executable's own (what createRequire
	// needs; nothing is ever found beside it, so msgpackr falls back to JS), main is false.
	writeFileSync(shim, 'export const importMetaUrl = require("node:url").pathToFileURL(__filename).href;\n');
	const tarHeaders = join(repo, "node_modules", "tar-stream", "headers.js");
	await build({
		entryPoints: [join(repo, "cli", "sea.ts")],
		outfile,
		bundle: true,
		platform: "node",
		format: "cjs",
		target: "node24",
		minify: true,
		keepNames: true,
		legalComments: "none",
		logLevel: "error",
		inject: [shim],
		define: {
			__TSSWARM_VERSION__: JSON.stringify(version),
			"import.meta.url": "importMetaUrl",
			"import.meta.main": "false",
		},
		// The native msgpack extractor is an optional addon; a single file cannot carry it.
		external: ["msgpackr-extract"],
		plugins: [
			...SOURCE_PATCHES,
			{
				name: "tar-headers",
				setup(b) {
					// tar-stream does not export headers.js; from source tar-headers.ts reaches it by path.
					b.onLoad({ filter: /runtime[\\/]image[\\/]tar-headers\.ts$/ }, () => ({
						contents: `import h from ${JSON.stringify(tarHeaders)}; export function tarHeaders() { return h; }`,
						loader: "js",
					}));
				},
			},
		],
	});
}

/**
 * Noise's crypto module instantiates two WebAssembly modules at import (ChaCha20-Poly1305 for
 * payloads under 1200 bytes, SHA-256), which compiles them and maps V8's WebAssembly compilers:
 * +8 MB RSS in every agent (measured, bench/agent-rss). In the bundle the module uses node:crypto
 * (OpenSSL) for every payload size. A change of the file in a noise update fails the build here.
 */
const noiseNodeCrypto: Plugin = {
	name: "noise-node-crypto",
	setup(b) {
		b.onLoad({ filter: /libp2p-noise[\\/]dist[\\/]src[\\/]crypto[\\/]index\.js$/ }, async (args) => {
			let src = await readFile(args.path, "utf8");
			const cut = (what: RegExp) => {
				if (!what.test(src)) throw new Error(`release: ${args.path} changed (no ${what}): review noiseNodeCrypto`);
				src = src.replace(what, "");
			};
			cut(/^import \{ newInstance, ChaCha20Poly1305 \} from '@chainsafe\/as-chacha20poly1305';$/m);
			cut(/^import \{ digest \} from '@chainsafe\/as-sha256';$/m);
			cut(/^const ctx = newInstance\(\);$/m);
			cut(/^const asImpl = new ChaCha20Poly1305\(ctx\);$/m);
			cut(/^export const asCrypto = \{[\s\S]*?^\};$/m);
			src = src.replaceAll("asCrypto.", "nodeCrypto.");
			if (/\bas(Impl|Crypto)\b|(?<![.\w])digest\(/.test(src))
				throw new Error(`release: ${args.path}: WebAssembly crypto left`);
			return { contents: src, loader: "js" };
		});
	},
};

/**
 * libp2p's peer store sorts protocols, metadata keys and addresses with String#localeCompare on
 * every peer update, only to make its records canonical: the first call builds an ICU collator,
 * which pages in ICU's collation data and code (+2.4 MB of the executable, +3 MB RSS in a bare
 * Node, measured). In the bundle they compare UTF-16 code units instead: the same total order on
 * both sides of every comparison (the store is in memory; nothing sorted the old way is kept).
 * A change of these files in an update fails the build here.
 */
const CODE_UNIT_SORTS: Array<[RegExp, string[]]> = [
	[
		/@libp2p[\\/]peer-record[\\/]dist[\\/]src[\\/]peer-record[\\/]utils\.js$/,
		["a.toString().localeCompare(b.toString())"],
	],
	[
		/@libp2p[\\/]peer-store[\\/]dist[\\/]src[\\/]utils[\\/]dedupe-addresses\.js$/,
		["a.multiaddr.toString().localeCompare(b.multiaddr.toString())"],
	],
	[
		/@libp2p[\\/]peer-store[\\/]dist[\\/]src[\\/]utils[\\/]to-peer-pb\.js$/,
		["a.localeCompare(b)", "a.localeCompare(b)"],
	],
];
const codeUnitSorts: Plugin = {
	name: "code-unit-sorts",
	setup(b) {
		for (const [filter, calls] of CODE_UNIT_SORTS)
			b.onLoad({ filter }, async (args) => {
				let src = await readFile(args.path, "utf8");
				for (const call of calls) {
					const m = /^(.*)\.localeCompare\((.*)\)$/.exec(call)!;
					if (!src.includes(call)) throw new Error(`release: ${args.path} changed (no ${call}): review codeUnitSorts`);
					src = src.replace(call, `codeUnitOrder(${m[1]}, ${m[2]})`);
				}
				if (src.includes("localeCompare")) throw new Error(`release: ${args.path}: localeCompare left`);
				const helper = "const codeUnitOrder = (x, y) => (x < y ? -1 : x > y ? 1 : 0);";
				return { contents: `${src}\n${helper}\n`, loader: "js" };
			});
	},
};

/** The dependencies' sources the bundle changes, for footprint (tests/release/bundle.test.ts). */
export const SOURCE_PATCHES: Plugin[] = [noiseNodeCrypto, codeUnitSorts];

/** The Node binary for `cpu`, of the version running this script (npm package node-linux-CPU). */
export function nodeBinary(cpu: string, cache: string, log: (l: string) => void, offline = false): string {
	const local = join(repo, "node_modules", "node", "node_modules", `node-linux-${cpu}`);
	if (existsSync(join(local, "bin", "node")) && pkgVersion(local) === NODE_VERSION) return join(local, "bin", "node");
	const dir = join(cache, `node-linux-${cpu}-${NODE_VERSION}`);
	const bin = join(dir, "package", "bin", "node");
	if (existsSync(bin)) return bin;
	if (offline) throw new Error(`node-linux-${cpu}@${NODE_VERSION} is not in ${cache}: run scripts/bootstrap.sh`);
	log(`fetching node-linux-${cpu}@${NODE_VERSION} from the npm registry`);
	rmSync(dir, { recursive: true, force: true });
	mkdirSync(dir, { recursive: true });
	// npm checks the tarball against the registry's integrity hash.
	const out = execFileSync("npm", ["pack", `node-linux-${cpu}@${NODE_VERSION}`, "--json", "--pack-destination", dir], {
		encoding: "utf8",
		stdio: ["ignore", "pipe", "inherit"],
	});
	const [{ filename }] = JSON.parse(out) as [{ filename: string }];
	execFileSync("tar", ["-xzf", join(dir, filename), "-C", dir, "package/bin/node"]);
	rmSync(join(dir, filename));
	return bin;
}

/** Node's Linux binaries carry ~18 MB of symbols; llvm-strip handles either architecture. */
function strip(file: string, platform: Platform, log: (l: string) => void): void {
	for (const tool of ["llvm-strip", ...(PLATFORMS[platform] === process.arch ? ["strip"] : [])]) {
		try {
			execFileSync(tool, ["--strip-all", file], { stdio: "ignore" });
			return;
		} catch {}
	}
	log(`${platform}: no strip tool (llvm-strip) found: the binary keeps its symbols`);
}

const defaultCache = () => process.env.TSSWARM_RELEASE_CACHE ?? join(repo, ".cache", "release");
const pkgVersion = (dir: string) =>
	(JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version;
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");
const mb = (file: string) => `${(statSync(file).size / 1e6).toFixed(1)} MB`;

if (import.meta.main) {
	const { values } = parseArgs({
		options: {
			out: { type: "string", default: join(repo, "dist") },
			platforms: { type: "string" },
			// bootstrap: only download the Node binaries (tests build offline).
			"fetch-node": { type: "boolean" },
		},
	});
	if (values["fetch-node"]) {
		for (const cpu of Object.values(PLATFORMS))
			nodeBinary(cpu, defaultCache(), (l) => process.stderr.write(`release: ${l}\n`));
		process.exit(0);
	}
	const platforms = values.platforms?.split(",").map((p) => {
		if (!(p in PLATFORMS))
			throw new Error(`--platforms: unknown platform ${p} (known: ${Object.keys(PLATFORMS).join(", ")})`);
		return p as Platform;
	});
	const r = await release({
		out: values.out,
		platforms,
		...(process.env.TSSWARM_VERSION ? { version: process.env.TSSWARM_VERSION } : {}),
		log: (l) => process.stderr.write(`release: ${l}\n`),
	});
	process.stdout.write(`${readFileSync(r.sums, "utf8")}`);
}
