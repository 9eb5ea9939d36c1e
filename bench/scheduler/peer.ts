// The peer of bench/scheduler: swarmkit's own scheduler benchmark (manager/scheduler
// BenchmarkScheduler*), built with Debian's golang-go from the swarmkit tarball of Debian's docker.io
// source package, in .cache/ (never in the repo), offline. Each step is skipped when already done.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../..", import.meta.url).pathname;
export const CACHE = join(root, ".cache", "scheduler-peer");
const SOURCES = "/etc/apt/sources.list.d/tsswarm-deb-src.sources";
// swarmkit's manager/scheduler tests import these beyond what its dfsg vendor/ keeps.
const GO_PACKAGES = [
	"golang-go",
	"golang-github-docker-go-events-dev",
	"golang-github-docker-go-metrics-dev",
	"golang-github-gogo-protobuf-dev",
	"golang-github-hashicorp-go-memdb-dev",
	"golang-github-pkg-errors-dev",
	"golang-github-sirupsen-logrus-dev",
	"golang-github-stretchr-testify-dev",
	"golang-google-grpc-dev",
];

export interface PeerBuild {
	binary: string;
	dir: string;
	version: string;
}

const log = (m: string) => process.stderr.write(`[scheduler] ${m}\n`);
const sh = (cmd: string, args: string[], cwd?: string, env: NodeJS.ProcessEnv = process.env) =>
	execFileSync(cmd, args, {
		cwd,
		encoding: "utf8",
		stdio: ["ignore", "pipe", "pipe"],
		env: { ...env, DEBIAN_FRONTEND: "noninteractive" },
		maxBuffer: 64 * 1024 * 1024,
	});

/** GOPATH mode as debian/rules builds it, no module proxy, no network. */
function goEnv(): NodeJS.ProcessEnv {
	return {
		...process.env,
		GO111MODULE: "off",
		GOPATH: `${join(CACHE, "gopath")}:/usr/share/gocode`,
		GOPROXY: "off",
		GOFLAGS: "",
		GOCACHE: join(CACHE, "gocache"),
	};
}

function installed(pkg: string): boolean {
	const r = spawnSync("dpkg-query", ["-s", pkg], { encoding: "utf8" });
	return r.status === 0 && /^Status: install ok installed$/m.test(r.stdout);
}

/** A deb-src entry for the archive the machine's own Debian sources use (deb822 or one-line). */
function ensureDebSrc(): void {
	const dir = "/etc/apt/sources.list.d";
	const all = readdirSync(dir)
		.filter((f) => f.endsWith(".sources") || f.endsWith(".list"))
		.map((f) => readFileSync(join(dir, f), "utf8"));
	if (existsSync("/etc/apt/sources.list")) all.push(readFileSync("/etc/apt/sources.list", "utf8"));
	const text = all.join("\n");
	if (/^Types:.*\bdeb-src\b/m.test(text) || /^deb-src\s/m.test(text)) return;
	const stanza = readFileSync(join(dir, "debian.sources"), "utf8")
		.split(/\n\s*\n/)
		.find((s) => /^URIs:\s*\S+\/debian\/?\s*$/m.test(s));
	if (!stanza) throw new Error(`no Debian archive stanza in ${dir}/debian.sources to add a deb-src entry for`);
	const keep = stanza
		.split("\n")
		.filter((l) => /^(URIs|Suites|Components|Signed-By):/.test(l))
		.join("\n");
	log(`adding ${SOURCES} (deb-src of the same archive) and running apt-get update`);
	writeFileSync(SOURCES, `# bench/scheduler: Debian's docker.io source package (swarmkit)\nTypes: deb-src\n${keep}\n`);
	sh("apt-get", ["update", "-qq"]);
}

export function buildPeer(): PeerBuild {
	const missing = GO_PACKAGES.filter((p) => !installed(p));
	if (missing.length > 0) {
		log(`apt-get install ${missing.join(" ")}`);
		try {
			sh("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600", ...missing]);
		} catch {
			sh("apt-get", ["update", "-qq"]);
			sh("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600", ...missing]);
		}
	}
	mkdirSync(CACHE, { recursive: true });
	const swarmkit = join(CACHE, "swarmkit");
	const schedDir = join(swarmkit, "manager", "scheduler");
	if (!existsSync(join(schedDir, "scheduler_test.go"))) {
		let tarball = readdirSync(CACHE).find((f) => /^docker\.io_.*\.orig-swarmkit\.tar\.xz$/.test(f));
		if (!tarball) {
			ensureDebSrc();
			log("apt-get source --download-only docker.io");
			sh("apt-get", ["source", "--download-only", "docker.io"], CACHE);
			tarball = readdirSync(CACHE).find((f) => /^docker\.io_.*\.orig-swarmkit\.tar\.xz$/.test(f));
			if (!tarball) throw new Error("Debian's docker.io source has no orig-swarmkit tarball");
		}
		rmSync(swarmkit, { recursive: true, force: true });
		sh("tar", ["-xJf", join(CACHE, tarball), "-C", CACHE]);
		if (!existsSync(join(schedDir, "scheduler_test.go"))) {
			throw new Error(`${tarball} has no manager/scheduler/scheduler_test.go`);
		}
	}
	const dsc = readdirSync(CACHE).find((f) => f.endsWith(".dsc")) ?? "docker.io (version unknown)";
	const version = `swarmkit from Debian ${dsc.replace(/\.dsc$/, "").replace("_", " ")}`;
	const binary = join(CACHE, "scheduler.test");
	if (!existsSync(binary)) {
		// GOPATH mode as debian/rules builds it: github.com/docker/swarmkit in a GOPATH, its vendor/
		// first, then Debian's packaged Go sources in /usr/share/gocode; no network.
		const link = join(CACHE, "gopath", "src", "github.com", "docker", "swarmkit");
		mkdirSync(join(link, ".."), { recursive: true });
		if (!existsSync(link)) symlinkSync(swarmkit, link);
		log("go test -c github.com/docker/swarmkit/manager/scheduler (offline)");
		sh("go", ["test", "-c", "-o", binary, "."], join(link, "manager", "scheduler"), goEnv());
	}
	return { binary, dir: schedDir, version };
}

/** Runs one benchmark once (-benchtime 1x): its ns/op, i.e. the time to place all its tasks. */
export function runPeer(build: PeerBuild, name: string, timeoutMs: number): number {
	log(`swarmkit ${name} (-benchtime 1x)`);
	const r = spawnSync(
		build.binary,
		["-test.run", "^$", "-test.bench", `^${name}$`, "-test.benchtime", "1x", "-test.benchmem=false"],
		{ cwd: build.dir, encoding: "utf8", timeout: timeoutMs, env: goEnv(), maxBuffer: 16 * 1024 * 1024 },
	);
	const m = new RegExp(`^${name}(?:-\\d+)?\\s+\\d+\\s+(\\d+(?:\\.\\d+)?) ns/op`, "m").exec(r.stdout ?? "");
	if (!m) {
		const why = r.error ? r.error.message : `exit ${r.status}: ${(r.stdout + r.stderr).trim().slice(-400)}`;
		throw new Error(`swarmkit ${name} gave no ns/op (${why})`);
	}
	return Number(m[1]);
}
