import { existsSync, readFileSync } from "node:fs";
import t from "tap";
import { waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";

const cli = new URL("../../cli/tsswarm", import.meta.url).pathname;

t.test("containers run in lab nodes from the lab registry, and lab down removes them", async (t) => {
	const lab = await withLab(t, { nodes: 2, registry: true });
	const reg = "198.18.0.254:5000";
	const run = await lab.exec("n1", [
		cli,
		"run",
		"--rm",
		"--platform",
		"linux/arm64",
		`${reg}/busybox:latest`,
		"uname",
		"-m",
	]);
	t.equal(
		run.stdout.trim(),
		"aarch64",
		`arm64 busybox pulled from the lab registry runs on n1 (${run.stderr.trim().split("\n").at(-1)})`,
	);
	// A detached container in its own network namespace: not inside n1's namespace, so only the
	// lab's cgroup sweep can find it.
	const d = await lab.exec("n1", [cli, "run", "-d", `${reg}/busybox:latest`, "sleep", "600"]);
	t.equal(d.code, 0, d.stderr);
	const id = d.stdout.trim();
	const ps = await lab.exec("n1", [cli, "ps", "--format", "json"]);
	const listed = JSON.parse(ps.stdout) as Array<{ id: string; status: string }>;
	t.equal(listed.find((c) => c.id === id)?.status, "running");
	const procsFile = existsSync("/sys/fs/cgroup/cgroup.controllers")
		? `/sys/fs/cgroup/tsl-${lab.name}-n1/${id}/cgroup.procs`
		: `/sys/fs/cgroup/pids/tsl-${lab.name}-n1/${id}/cgroup.procs`;
	const pids = readFileSync(procsFile, "utf8").split("\n").filter(Boolean).map(Number);
	t.ok(pids.length > 0, "the container's processes sit in the lab node's cgroup");
	await lab.destroy();
	for (const pid of pids) {
		await waitFor(`container process ${pid} gone`, () => {
			try {
				process.kill(pid, 0);
				return false;
			} catch {
				return true;
			}
		});
	}
	t.notOk(existsSync(procsFile), "its cgroup is gone");
	t.notOk(readFileSync("/proc/self/mountinfo", "utf8").includes(lab.record.dir), "no mount under the lab is left");
});
