import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import t from "tap";

const bin = new URL("../../cli/tsswarm", import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(bin, args, { encoding: "utf8" });
const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

t.test("--version prints the package version and exits 0", async (t) => {
	const r = run("--version");
	t.equal(r.status, 0);
	t.equal(r.stdout.trim(), pkg.version);
});

t.test("--help lists usage and exits 0", async (t) => {
	const r = run("--help");
	t.equal(r.status, 0);
	t.match(r.stdout, /Usage: tsswarm/);
});

t.test("an unknown command exits 2 with one line on stderr", async (t) => {
	const r = run("frobnicate");
	t.equal(r.status, 2);
	t.equal(r.stdout, "");
	const lines = r.stderr.trim().split("\n");
	t.equal(lines.length, 1, `stderr was: ${r.stderr}`);
	t.match(lines[0], /^tsswarm: .*frobnicate/);
});

t.test("an unknown option exits 2", async (t) => {
	const r = run("--bogus");
	t.equal(r.status, 2);
	t.match(r.stderr, /^tsswarm: .*--bogus/);
});

t.test("run exits 125 when tsswarm itself fails, as docker run does; other commands 2", async (t) => {
	const missing = run("run");
	t.equal(missing.status, 125, `no image: ${missing.stderr.trim()}`);
	const bogus = run("run", "--bogus", "busybox");
	t.equal(bogus.status, 125, "an unknown flag of run");
	t.match(bogus.stderr, /^tsswarm: .*--bogus/);
	const hosted = run("--host", "unix:///nonexistent.sock", "run", "--bogus", "busybox");
	t.equal(hosted.status, 125, "after global options too");
	t.equal(run("ps", "--bogus").status, 2, "positive control: another command's usage error is 2");
	t.equal(run("run", "--help").status, 0, "help is not a failure");
});
