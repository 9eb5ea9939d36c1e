// Cgroup detection and paths against fixture trees shaped like /sys/fs/cgroup in each mode
// (this machine is v1 hybrid, so v2 and pure v1 are only reachable this way).
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { allCgroupDirs, cgroupDirs, detectCgroups, Runtime, readCgroupStats } from "../../runtime/index.ts";
import { tempDir } from "../helpers/index.ts";

function tree(t: Test, files: Record<string, string>, links: Record<string, string> = {}): string {
	const d = tempDir("cg-fixture-");
	t.teardown(d.remove);
	for (const [rel, body] of Object.entries(files)) {
		mkdirSync(join(d.path, rel, ".."), { recursive: true });
		if (!rel.endsWith("/")) writeFileSync(join(d.path, rel), body);
		else mkdirSync(join(d.path, rel), { recursive: true });
	}
	for (const [rel, target] of Object.entries(links)) symlinkSync(target, join(d.path, rel));
	return d.path;
}

const rel = "tsw/abc";

t.test("v2 (unified): one directory, memory.max / cpu.stat usage_usec / pids.current", async (t) => {
	const root = tree(t, {
		"cgroup.controllers": "cpu memory pids",
		[`${rel}/memory.current`]: "1048576\n",
		[`${rel}/memory.max`]: "67108864\n",
		[`${rel}/cpu.stat`]: "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n",
		[`${rel}/pids.current`]: "3\n",
	});
	const l = detectCgroups(root);
	t.equal(l.mode, "v2");
	t.same(cgroupDirs(l, rel), { memory: join(root, rel), cpu: join(root, rel), pids: join(root, rel) });
	t.same(allCgroupDirs(l, `/${rel}`), [join(root, rel)]);
	t.same(readCgroupStats(l, rel), { cpuNanos: 2_500_000, memoryBytes: 1_048_576, memoryLimit: 67_108_864, pids: 3 });
	const noLimit = tree(t, { "cgroup.controllers": "", [`${rel}/memory.max`]: "max\n" });
	t.equal(readCgroupStats(detectCgroups(noLimit), rel).memoryLimit, undefined, "max = no limit");
});

t.test("hybrid: v1 controllers plus unified/, each hierarchy its own directory", async (t) => {
	const root = tree(t, {
		"unified/cgroup.controllers": "",
		[`memory/${rel}/memory.usage_in_bytes`]: "4096\n",
		[`memory/${rel}/memory.limit_in_bytes`]: "9223372036854771712\n",
		[`cpuacct/${rel}/cpuacct.usage`]: "123456789\n",
		[`cpu/${rel}/`]: "",
		[`pids/${rel}/pids.current`]: "2\n",
		"systemd/": "",
	});
	const l = detectCgroups(root);
	t.equal(l.mode, "hybrid");
	t.equal(cgroupDirs(l, rel).cpu, join(root, "cpuacct", rel));
	t.same(
		allCgroupDirs(l, rel).sort(),
		["cpu", "cpuacct", "memory", "pids", "systemd", "unified"].map((c) => join(root, c, rel)).sort(),
		"cleanup checks look in every hierarchy, unified/ included",
	);
	t.same(readCgroupStats(l, rel), { cpuNanos: 123_456_789, memoryBytes: 4096, memoryLimit: undefined, pids: 2 });
});

t.test("pure v1 with cpu,cpuacct co-mounted behind symlinks", async (t) => {
	const root = tree(
		t,
		{
			[`cpu,cpuacct/${rel}/cpuacct.usage`]: "42\n",
			[`memory/${rel}/memory.limit_in_bytes`]: "33554432\n",
			[`memory/${rel}/memory.usage_in_bytes`]: "100\n",
			"pids/": "",
		},
		{ cpu: "cpu,cpuacct", cpuacct: "cpu,cpuacct" },
	);
	const l = detectCgroups(root);
	t.equal(l.mode, "v1");
	t.equal(cgroupDirs(l, rel).cpu, join(root, "cpuacct", rel), "through the symlink");
	t.same(
		allCgroupDirs(l, rel).sort(),
		["cpu,cpuacct", "memory", "pids"].map((c) => join(root, c, rel)).sort(),
		"symlinked co-mounts are counted once",
	);
	t.same(readCgroupStats(l, rel), { cpuNanos: 42, memoryBytes: 100, memoryLimit: 33_554_432, pids: undefined });
});

t.test("the Runtime detects the layout once and uses it for stats and cleanup checks", async (t) => {
	const root = tree(t, {
		"cgroup.controllers": "",
		[`tswx/${"a".repeat(64)}/pids.current`]: "5\n",
	});
	const data = tempDir("cg-rt-");
	t.teardown(data.remove);
	const rt = new Runtime({ root: data.path, cgroupRoot: root, cgroupParent: "tswx" });
	t.equal(rt.cgroups.mode, "v2");
	t.same(rt.cgroupDirsOf("a".repeat(64)), [join(root, "tswx", "a".repeat(64))]);
	t.same(rt.cgroupDirsOf("b".repeat(64)), []);
});
