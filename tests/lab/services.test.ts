// Services on a real 3-node cluster lab (real agents, real runc): create, ls, ps, inspect, scale and
// rm as a user types them; a constraint nobody satisfies says so. (Jobs and refusals: services-jobs.)
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
	// The list conventions every list command has: templates, -q, --filter.
	t.equal(await cli(lab, "n3", ["service", "ls", "--format", "{{.Name}} {{.Replicas}}"]), "web 3/3\n", "a template");
	t.equal((await cli(lab, "n1", ["service", "ps", "web", "-q"])).trim().split("\n").length, 3, "ps -q: 3 ids");
	t.equal(
		(await cli(lab, "n1", ["service", "ps", "web", "--filter", "desired-state=shutdown", "-q"])).trim(),
		"",
		"--filter desired-state=shutdown: none yet",
	);
	t.equal((await lab.tsswarm("n1", ["service", "ls", "--format", "{{.Nope}}"])).code, 2, "an unknown field exits 2");

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
	// A task's container is the agent's: tsswarm rm refuses it (and it stays).
	const owned = before[0]![0]!;
	const refused = await lab.tsswarm(lab.nodes[0]!.name, ["rm", "-f", owned.id]);
	t.equal(refused.code, 1, "tsswarm rm refuses a task's container");
	t.match(refused.stderr, /runs task \S+ of service web: the agent owns it/);
	t.ok(
		(await containersOn(lab, lab.nodes[0]!.name, "web")).some((c) => c.id === owned.id),
		"and the container is still there",
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
	t.notOk(
		rows.some((x) => x.nodeId),
		"no node assigned",
	);
	t.equal((await lab.tsswarm("n1", ["service", "rm", "nowhere"])).code, 0, "rm");
});
