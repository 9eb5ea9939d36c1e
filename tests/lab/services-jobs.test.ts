// Jobs and refusals on a real 3-node cluster lab: a replicated job runs to completion with at most
// --max-concurrent tasks at once, a failing one stops after its restart attempts; invalid specs are
// refused before anything is stored.
import t from "tap";
import { withLab } from "../helpers/lab.ts";
import { BUSYBOX, serviceLs, servicePs, waitPs } from "../helpers/services.ts";

const t0 = Date.now();
const lab = await withLab(t, { nodes: 3, cluster: true, registry: true });
t.comment(`lab up --cluster --registry: ${Date.now() - t0} ms`);

t.test("a replicated job runs to completion, at most --max-concurrent at once", async (t) => {
	const since = Date.now();
	const r = await lab.tsswarm("n1", [
		"service",
		"create",
		"--detach",
		"--name",
		"job",
		"--mode",
		"replicated-job",
		"--replicas",
		"3",
		"--max-concurrent",
		"2",
		BUSYBOX,
		"sh",
		"-c",
		"sleep 4",
	]);
	t.equal(r.code, 0, `create of the job exits 0: the command's own flags (sh -c) are passed on (${r.stderr.trim()})`);
	let maxRunning = 0;
	const rows = await waitPs(lab, "n1", "job", "3 completed", (rs) => {
		maxRunning = Math.max(maxRunning, rs.filter((x) => x.state === "running").length);
		return rs.filter((x) => x.state === "complete").length === 3;
	});
	t.comment(
		`job of 3 × sleep 4 (2 at once) completed in ${Date.now() - since} ms; most running at once: ${maxRunning}`,
	);
	t.ok(maxRunning >= 1, "control: tasks were seen running");
	t.ok(maxRunning <= 2, `never more than 2 running at once (saw ${maxRunning})`);
	t.equal(rows.length, 3, "3 tasks, one per completion");
	t.same(rows.map((x) => x.slot).sort(), [1, 2, 3]);
	// None more: the count stays 3 while the orchestrator runs its timers (several passes).
	const until = Date.now() + 4000;
	while (Date.now() < until) {
		t.equal((await servicePs(lab, "n2", "job")).length, 3, "still 3 tasks");
		await new Promise((res) => setTimeout(res, 1000));
	}
	const ls = (await serviceLs(lab, "n1")).find((s) => s.name === "job");
	t.same(ls && [ls.running, ls.desired], [3, 3], "service ls: 3/3 completed");
	t.equal((await lab.tsswarm("n1", ["service", "rm", "job"])).code, 0, "rm");
});

t.test("a failing job: --restart-max-attempts 2 → exactly 3 attempts, then it stays failed", async (t) => {
	const r = await lab.tsswarm("n1", [
		"service",
		"create",
		"--detach",
		"--name",
		"fails",
		"--mode",
		"replicated-job",
		"--restart-condition",
		"on-failure",
		"--restart-max-attempts",
		"2",
		"--restart-delay",
		"0s",
		BUSYBOX,
		"sh",
		"-c",
		"exit 3",
	]);
	t.equal(r.code, 0, `create exits 0 (${r.stderr.trim()})`);
	const rows = await waitPs(
		lab,
		"n1",
		"fails",
		"3 failed attempts",
		(rs) => rs.filter((x) => x.state === "failed").length >= 3,
	);
	t.ok(
		rows.every((x) => /non-zero exit \(3\)/.test(x.error)),
		"each attempt failed with exit 3",
	);
	const until = Date.now() + 4000;
	while (Date.now() < until) {
		const now = await servicePs(lab, "n2", "fails");
		t.equal(now.length, 3, "no 4th attempt");
		await new Promise((res) => setTimeout(res, 1000));
	}
	t.equal((await serviceLs(lab, "n1")).find((s) => s.name === "fails")?.running, 0, "service ls: 0 completed");
	t.equal((await lab.tsswarm("n1", ["service", "rm", "fails"])).code, 0, "rm");
});

t.test("invalid specs are refused, naming the field, and nothing is stored", async (t) => {
	const names = async () => (await serviceLs(lab, "n1")).map((s) => s.name).sort();
	const before = await names();
	const cases: Array<[string, string[], RegExp]> = [
		["negative replicas", ["--replicas", "-1"], /--replicas "-1"/],
		["bad mount target", ["--mount", "type=bind,source=/tmp,target=relative"], /mounts\[0\]\.target/],
		["bad mount type", ["--mount", "type=nfs,target=/x"], /mounts\[0\]\.type/],
		["unknown network", ["--network", "nonet"], /network nonet not found/],
		["bad constraint syntax", ["--constraint", "node.labels.zone=a"], /constraint "node\.labels\.zone=a"/],
		["unknown constraint key", ["--constraint", "node.color==red"], /unknown key "node\.color"/],
		["unknown restart condition", ["--restart-condition", "always"], /restartPolicy\.condition|--restart-condition/],
		["unknown mode", ["--mode", "sometimes"], /--mode "sometimes"/],
	];
	for (const [what, flags, message] of cases) {
		const r = await lab.tsswarm("n2", ["service", "create", "--detach", "--name", "bad", ...flags, BUSYBOX]);
		t.ok(r.code === 1 || r.code === 2, `${what}: exit 1 or 2 (got ${r.code})`);
		t.match(r.stderr, message, `${what}: the message names it`);
	}
	t.same(await names(), before, "service ls shows nothing new");
	// Control: the same command with a valid spec is stored and listed.
	const ok = await lab.tsswarm("n2", [
		"service",
		"create",
		"--detach",
		"--name",
		"bad",
		"--mount",
		"type=tmpfs,target=/x",
		"--constraint",
		"node.labels.zone!=a",
		"--restart-condition",
		"any",
		BUSYBOX,
		"sleep",
		"3600",
	]);
	t.equal(ok.code, 0, `control: a valid spec is accepted (${ok.stderr.trim()})`);
	t.same(await names(), [...before, "bad"].sort(), "control: and listed");
	t.equal((await lab.tsswarm("n1", ["service", "rm", "bad"])).code, 0, "rm");
});
