// Services on a real 3-node cluster lab (real agents, real runc): create, ls, ps, inspect, scale and
// rm as a user types them; a constraint nobody satisfies says so; jobs run to completion or give up
// as their restart policy says; invalid specs are refused before anything is stored.
import t from "tap";
import { waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import {
	BUSYBOX,
	cli,
	containersOn,
	liveRunning,
	runningEverywhere,
	serviceLs,
	servicePs,
	total,
	waitPs,
} from "../helpers/services.ts";

const t0 = Date.now();
const lab = await withLab(t, { nodes: 3, cluster: true, registry: true });
t.comment(`lab up --cluster --registry: ${Date.now() - t0} ms`);

t.test("create, ls, ps, inspect, scale 3→5→1 and rm", async (t) => {
	let since = Date.now();
	const created = await lab.tsswarm("n1", [
		"service",
		"create",
		"--name",
		"web",
		"--replicas",
		"3",
		"--stop-grace-period",
		"1s",
		BUSYBOX,
		"sleep",
		"3600",
	]);
	t.equal(created.code, 0, `service create exits 0 (${created.stderr.trim()})`);
	t.match(created.stdout, /verify: Service converged/, "create waits for convergence, as docker does");
	t.comment(`create --replicas 3 converged in ${Date.now() - since} ms`);

	const ls = (await serviceLs(lab, "n2")).find((s) => s.name === "web");
	t.same(ls && { running: ls.running, desired: ls.desired, mode: ls.mode }, {
		running: 3,
		desired: 3,
		mode: "replicated",
	});
	t.match(await cli(lab, "n3", ["service", "ls"]), /web\s+replicated\s+3\/3/, "service ls (table) on n3: 3/3");

	const rows = liveRunning(await servicePs(lab, "n1", "web"));
	t.equal(rows.length, 3, "service ps: 3 running tasks");
	t.same(rows.map((r) => r.node).sort(), ["n1", "n2", "n3"], "one task per node");
	t.same(rows.map((r) => r.slot).sort(), [1, 2, 3], "slots 1..3");

	const [inspected] = JSON.parse(await cli(lab, "n2", ["service", "inspect", "web"])) as Array<{
		id: string;
		value: { spec: { name: string; mode: { replicas: number }; task: { container: { image: string } } } };
	}>;
	t.equal(inspected?.value.spec.name, "web", "inspect prints a JSON array with the service");
	t.equal(inspected?.value.spec.mode.replicas, 3, "inspect: 3 replicas");
	t.match(inspected?.value.spec.task.container.image, /^198\.18\.0\.254:5000\/busybox:latest@sha256:[0-9a-f]{64}$/);

	since = Date.now();
	const up = await lab.tsswarm("n2", ["service", "scale", "web=5"]);
	t.equal(up.code, 0, `scale web=5 exits 0 (${up.stderr.trim()})`);
	t.match(up.stdout, /web scaled to 5[\s\S]*verify: Service converged/);
	t.comment(`scale 3→5 converged in ${Date.now() - since} ms`);
	const five = liveRunning(await servicePs(lab, "n1", "web"));
	t.equal(five.length, 5, "service ps: 5 running");
	t.same([...new Set(five.map((r) => r.node))].sort(), ["n1", "n2", "n3"], "the 5 are spread over all 3 nodes");
	t.equal(total(await runningEverywhere(lab, "web")), 5, "5 running containers across the nodes");

	since = Date.now();
	const down = await lab.tsswarm("n3", ["service", "scale", "web=1"]);
	t.equal(down.code, 0, `scale web=1 exits 0 (${down.stderr.trim()})`);
	t.equal(liveRunning(await servicePs(lab, "n1", "web")).length, 1, "service ps: 1 running");
	await waitFor("only 1 container of web running", async () => total(await runningEverywhere(lab, "web")) === 1, {
		timeoutMs: 30_000,
		intervalMs: 1000,
	});
	t.comment(`scale 5→1: 4 containers stopped in ${Date.now() - since} ms`);
	const after = await waitPs(lab, "n1", "web", "the 4 scaled-down tasks report shutdown", (rs) =>
		rs.filter((r) => r.desiredState === "shutdown").every((r) => r.state === "shutdown"),
	);
	t.equal(after.filter((r) => r.desiredState === "shutdown").length, 4, "4 tasks shut down, kept as history");
	t.equal((await serviceLs(lab, "n1")).find((s) => s.name === "web")?.running, 1, "service ls: 1/1");

	// rm: every container of every task goes, on every node. Control: they exist before.
	const before = await Promise.all(lab.nodes.map((n) => containersOn(lab, n.name, "web")));
	t.ok(
		before.every((l) => l.length > 0),
		"control: every node has containers of web (ps -a) before rm",
	);
	since = Date.now();
	t.equal((await lab.tsswarm("n2", ["service", "rm", "web"])).code, 0, "service rm exits 0");
	await waitFor(
		"no container of web on any node",
		async () => (await Promise.all(lab.nodes.map((n) => containersOn(lab, n.name, "web")))).every((l) => !l.length),
		{ timeoutMs: 30_000, intervalMs: 1000 },
	);
	t.comment(`rm: every container gone in ${Date.now() - since} ms`);
	t.notOk(
		(await serviceLs(lab, "n1")).some((s) => s.name === "web"),
		"service ls no longer lists web",
	);
	const ps = await lab.tsswarm("n1", ["service", "ps", "web"]);
	t.equal(ps.code, 1, "service ps web: exit 1");
	t.match(ps.stderr, /not found/);
});

t.test("a constraint nobody satisfies: the task stays pending and says why", async (t) => {
	const r = await lab.tsswarm("n1", [
		"service",
		"create",
		"--detach",
		"--name",
		"nowhere",
		"--constraint",
		"node.labels.zone==mars",
		BUSYBOX,
		"sleep",
		"3600",
	]);
	t.equal(r.code, 0, `create --detach exits 0 (${r.stderr.trim()})`);
	const rows = await waitPs(lab, "n2", "nowhere", "a pending task with a reason", (rs) =>
		rs.some((x) => x.state === "pending" && x.error !== ""),
	);
	t.match(rows[0]?.error, /^no suitable node \(.*constraints not satisfied on 3 nodes.*\)$/, "the reason");
	t.match(
		await cli(lab, "n3", ["service", "ps", "nowhere"]),
		/Pending .*"no suitable node \(/,
		"service ps (table) shows the reason",
	);
	t.equal((await serviceLs(lab, "n1")).find((s) => s.name === "nowhere")?.running, 0, "service ls: 0/1");
	t.equal(total(await runningEverywhere(lab, "nowhere")), 0, "no container anywhere");
	t.equal((await lab.tsswarm("n1", ["service", "rm", "nowhere"])).code, 0, "rm");
});

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
