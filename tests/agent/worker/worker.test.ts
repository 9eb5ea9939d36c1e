// The worker with real runc: tasks run and report up the state ladder, exits end in complete or
// failed, removals stop and remove, a restarted agent adopts its containers without starting them
// again, offline exits restart as the policy says, health and stop signals come from the spec.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t, { type Test } from "tap";
import { containerName } from "../../../agent/services/index.ts";
import {
	InvalidAssignmentError,
	LABEL_NODE_ID,
	LABEL_SERVICE_NAME,
	LABEL_TASK_ID,
} from "../../../agent/worker/index.ts";
import { uniqueName, waitFor } from "../../helpers/index.ts";
import { withRegistry } from "../../helpers/registry.ts";
import { fileRuntime } from "../../helpers/runtime.ts";
import { dataDir, makeTask, startWorker } from "./fixtures.ts";

const { rt } = fileRuntime("worker");
let image = "";
t.before(async () => {
	const reg = await withRegistry(t);
	image = `${reg.hostPort}/busybox:latest`;
});

const setup = async (t: Test, o: { connected?: boolean } = {}) => {
	const data = { path: dataDir() };
	const nodeId = uniqueName("node");
	const w = await startWorker(t, rt, { dataRoot: data.path, nodeId });
	w.worker.setConnected(o.connected ?? true);
	return { ...w, data, nodeId };
};
const byTask = (id: string) => rt.list({ all: true }).filter((c) => c.spec.labels?.[LABEL_TASK_ID] === id);

t.test("two tasks run: reports go up the ladder in order, containers named and labelled as Swarm's", async (t) => {
	const { worker, states, last, nodeId, data } = await setup(t);
	const a = makeTask({ image, args: ["sleep", "300"], slot: 1 });
	const b = makeTask({
		image,
		args: ["sleep", "300"],
		slot: 2,
		service: a.serviceName,
		container: { labels: { team: "x" } },
	});
	await worker.assign({ full: true, tasks: [a, b], networks: [] });
	for (const task of [a, b]) await waitFor(`${task.id} running`, () => last(task.id)?.state === "running");
	for (const task of [a, b]) {
		t.same(states(task.id), ["accepted", "preparing", "ready", "starting", "running"], "each state once, in order");
		const [c, ...more] = byTask(task.id);
		t.equal(more.length, 0, "one container per task");
		t.equal(c?.name, `${a.serviceName}.${task.slot}.${task.id}`);
		t.equal(c?.name, containerName(task));
		t.equal(c?.status, "running");
		t.equal(c?.spec.labels?.[LABEL_SERVICE_NAME], a.serviceName);
		t.equal(c?.spec.labels?.[LABEL_NODE_ID], nodeId);
		t.equal(last(task.id)?.containerId, c?.id, "the report names the container");
	}
	t.equal(byTask(b.id)[0]?.spec.labels?.team, "x", "the spec's container labels");
	const saved = JSON.parse(readFileSync(join(data.path, "worker", "assignments.json"), "utf8"));
	t.same(
		saved.tasks.map((x: { id: string; status: { state: string } }) => [x.id, x.status.state]).sort(),
		[a.id, b.id].map((id) => [id, "running"]).sort(),
		"assignments and their states are on disk",
	);
	// The same assignment again changes nothing: no second container, no new report.
	const before = states(a.id).length;
	await worker.assign({ full: true, tasks: [a, b], networks: [] });
	await worker.assign({ full: false, tasks: [a], networks: [] });
	t.equal(byTask(a.id).length, 1, "re-assigned: still one container");
	t.equal(states(a.id).length, before, "no new report");
});

t.test("exits: 0 -> complete, 1 -> failed with the exit code (connected: no local restart)", async (t) => {
	const { worker, states, last } = await setup(t);
	const ok = makeTask({ image, args: ["true"] });
	const bad = makeTask({ image, args: ["sh", "-c", "exit 7"], restartPolicy: { condition: "any", delayMs: 0 } });
	await worker.assign({ full: true, tasks: [ok, bad], networks: [] });
	await waitFor("both ended", () => last(ok.id)?.state === "complete" && last(bad.id)?.state === "failed");
	t.equal(last(ok.id)?.exitCode, 0);
	t.equal(last(bad.id)?.exitCode, 7);
	t.match(last(bad.id)?.err, /non-zero exit \(7\)/);
	t.same(states(bad.id).slice(-2), ["running", "failed"]);
	t.equal(byTask(bad.id).length, 1, "connected: not restarted (the orchestrator replaces it)");
	t.equal(byTask(bad.id)[0]?.status, "exited");
});

t.test("removal: from a change set and from a complete set -> stopped and removed", async (t) => {
	const { worker, last } = await setup(t);
	const tasks = [1, 2, 3].map((slot) => makeTask({ image, args: ["sleep", "300"], slot }));
	await worker.assign({ full: true, tasks, networks: [] });
	for (const x of tasks) await waitFor("running", () => last(x.id)?.state === "running");
	const [a, b, c] = tasks as [(typeof tasks)[0], (typeof tasks)[0], (typeof tasks)[0]];
	await worker.assign({ full: false, tasks: [], networks: [], removed: [a.id] });
	await waitFor("a's container gone", () => byTask(a.id).length === 0);
	await worker.assign({ full: true, tasks: [c], networks: [] });
	await waitFor("b's container gone", () => byTask(b.id).length === 0);
	t.equal(byTask(c.id)[0]?.status, "running", "the task still assigned keeps running (positive control)");
	t.same(
		worker.tasks().map((x) => x.id),
		[c.id],
	);
	// Desired shutdown: stopped, kept, reported shutdown; desired remove: gone.
	await worker.assign({ full: true, tasks: [{ ...c, desiredState: "shutdown" }], networks: [] });
	await waitFor("c shut down", () => last(c.id)?.state === "shutdown");
	t.equal(byTask(c.id)[0]?.status, "exited", "stopped, not removed");
	await worker.assign({ full: true, tasks: [{ ...c, desiredState: "remove" }], networks: [] });
	await waitFor("c removed", () => byTask(c.id).length === 0);
});

/** A worker on a fresh data dir running two sleeping tasks (restart at once, no delay). */
async function twoSleepers(t: Test) {
	const data = { path: dataDir() };
	const nodeId = uniqueName("node");
	const first = await startWorker(t, rt, { dataRoot: data.path, nodeId });
	const tasks = [1, 2].map((slot) =>
		makeTask({ image, args: ["sleep", "300"], slot, restartPolicy: { condition: "any", delayMs: 0 } }),
	);
	await first.worker.assign({ full: true, tasks, networks: [] });
	for (const x of tasks) await waitFor("running", () => first.last(x.id)?.state === "running");
	return { data, nodeId, first, tasks, ids: tasks.map((x) => byTask(x.id)[0]!) };
}

t.test(
	"a new worker on the same data dir adopts the running containers; a complete set without one removes it",
	async (t) => {
		// No restart delay: a worker that did not adopt would make a new container at once.
		const { data, nodeId, first, tasks, ids } = await twoSleepers(t);
		await first.worker.stop();
		t.same(
			ids.map((c) => rt.inspect(c.id).status),
			["running", "running"],
			"stopping the worker does not stop its containers",
		);

		// Restarted with no manager reachable: it resumes from the file alone.
		const second = await startWorker(t, rt, { dataRoot: data.path, nodeId });
		t.same(
			second.worker.tasks().map((x) => [x.id, x.status.state]),
			tasks.map((x) => [x.id, "running"]),
			"the tasks come back from disk with their states",
		);
		// Give the controllers time to act, then check that nothing was started or made again.
		await new Promise((r) => setTimeout(r, 500));
		for (const [i, x] of tasks.entries()) {
			const now = byTask(x.id);
			t.equal(now.length, 1, "no second container");
			t.equal(now[0]?.id, ids[i]!.id, "the same container");
			t.equal(now[0]?.startedAt, ids[i]!.startedAt, "not started again");
		}
		t.same(second.reports, [], "nothing to report: still running");
		second.worker.setConnected(true);
		await second.worker.assign({ full: true, tasks: [tasks[0]!], networks: [] });
		await waitFor("the unassigned one removed", () => byTask(tasks[1]!.id).length === 0);
		t.equal(rt.inspect(ids[0]!.id).status, "running", "the assigned one keeps running");
	},
);

t.test("a host shutdown: stop({ stopContainers }) stops every task's container, kept for the next boot", async (t) => {
	const { data, nodeId, first, tasks, ids } = await twoSleepers(t);
	t.same(
		ids.map((c) => rt.inspect(c.id).status),
		["running", "running"],
		"control: both run",
	);
	const reported = first.reports.length;
	await first.worker.stop({ stopContainers: true });
	t.same(
		ids.map((c) => rt.inspect(c.id).status),
		["exited", "exited"],
		"both stopped (sleep as pid 1 ignores SIGTERM: the grace period, then SIGKILL)",
	);
	t.equal(first.reports.length, reported, "no report: the desired state is still running");

	// The next boot: the worker resumes from its file and runs the tasks again, as their policy says.
	await startWorker(t, rt, { dataRoot: data.path, nodeId });
	for (const [i, x] of tasks.entries())
		await waitFor(`${x.id} running again`, () =>
			byTask(x.id).some((c) => c.status === "running" && c.startedAt !== ids[i]!.startedAt),
		);
	t.pass("both run again after the next start");
});

t.test("a complete set removes containers of this node's tasks the worker never had", async (t) => {
	const data = { path: dataDir() };
	const nodeId = uniqueName("node");
	const first = await startWorker(t, rt, { dataRoot: data.path, nodeId });
	const stray = makeTask({ image, args: ["sleep", "300"] });
	await first.worker.assign({ full: true, tasks: [stray], networks: [] });
	await waitFor("running", () => first.last(stray.id)?.state === "running");
	await first.worker.stop();
	// Its assignments lost: a fresh data dir, the same node and runtime.
	const other = { path: dataDir() };
	const second = await startWorker(t, rt, { dataRoot: other.path, nodeId });
	await new Promise((r) => setTimeout(r, 200));
	t.equal(byTask(stray.id).length, 1, "left alone until a complete set arrives");
	const keep = makeTask({ image, args: ["sleep", "300"] });
	await second.worker.assign({ full: true, tasks: [keep], networks: [] });
	await waitFor("stray removed", () => byTask(stray.id).length === 0);
	await waitFor("kept one running", () => second.last(keep.id)?.state === "running");
});

t.test("offline: an exited task is restarted as its policy says, maxAttempts respected", async (t) => {
	const { worker, reports, last } = await setup(t, { connected: false });
	const flaky = makeTask({
		image,
		args: ["sh", "-c", "exit 3"],
		restartPolicy: { condition: "on-failure", delayMs: 50, maxAttempts: 2, windowMs: 60_000 },
	});
	const done = makeTask({ image, args: ["true"], restartPolicy: { condition: "on-failure", delayMs: 0 } });
	const never = makeTask({ image, args: ["sh", "-c", "exit 4"], restartPolicy: { condition: "none" } });
	await worker.assign({ full: true, tasks: [flaky, done, never], networks: [] });
	await waitFor("flaky gave up", () => last(flaky.id)?.state === "failed", { timeoutMs: 20_000 });
	const restarts = reports.filter((r) => r.taskId === flaky.id && /restarted locally/.test(r.status.message));
	t.equal(restarts.length, 2, "restarted twice, then the exit is reported");
	t.equal(last(flaky.id)?.exitCode, 3);
	t.equal(byTask(flaky.id).length, 1, "each restart replaced the container, never two");
	await waitFor("others ended", () => last(done.id)?.state === "complete" && last(never.id)?.state === "failed");
	t.notOk(
		reports.some((r) => r.taskId !== flaky.id && /restarted/.test(r.status.message)),
		"on-failure + exit 0, none: not restarted",
	);
});

t.test(
	"offline: condition any restarts even a clean exit; connected again, the next exit is only reported",
	async (t) => {
		const { worker, reports, last } = await setup(t, { connected: false });
		const x = makeTask({
			image,
			args: ["sh", "-c", "sleep 0.3"],
			restartPolicy: { condition: "any", delayMs: 0, maxAttempts: 0 },
		});
		await worker.assign({ full: true, tasks: [x], networks: [] });
		const restarts = () =>
			reports.filter((r) => r.taskId === x.id && /restarted locally/.test(r.status.message)).length;
		await waitFor("restarted twice", () => restarts() >= 2, { timeoutMs: 20_000 });
		worker.setConnected(true);
		await waitFor("complete reported", () => last(x.id)?.state === "complete", { timeoutMs: 10_000 });
		t.equal(last(x.id)?.exitCode, 0);
	},
);

t.test("health: the spec's check makes a task healthy or unhealthy in its status", async (t) => {
	const { worker, last } = await setup(t);
	const hc = (cmd: string) => ({
		healthcheck: { test: ["CMD-SHELL", cmd], intervalMs: 100, timeoutMs: 1000, retries: 2 },
	});
	const good = makeTask({ image, args: ["sleep", "300"], container: hc("true") });
	const bad = makeTask({ image, args: ["sleep", "300"], container: hc("false") });
	await worker.assign({ full: true, tasks: [good, bad], networks: [] });
	await waitFor("healthy", () => last(good.id)?.health === "healthy", { timeoutMs: 15_000 });
	await waitFor("unhealthy", () => last(bad.id)?.health === "unhealthy", { timeoutMs: 15_000 });
	t.equal(last(good.id)?.state, "running");
	t.equal(last(bad.id)?.state, "running");
});

t.test(
	"the spec reaches the container: env, workdir, user, hostname, read-only, tmpfs, caps, stop signal",
	async (t) => {
		const { worker, last } = await setup(t);
		const x = makeTask({
			image,
			args: [
				"sh",
				"-c",
				'echo "$GREETING $(pwd) $(id -u) $(hostname)"; touch /ro 2>/dev/null || echo ro; touch /scratch/f && echo tmpfs; grep CapEff /proc/self/status; trap "echo got-usr1; exit 0" USR1; while :; do sleep 0.05; done',
			],
			container: {
				env: ["GREETING=hi"],
				workdir: "/tmp",
				user: "nobody",
				hostname: "box1",
				readOnly: true,
				mounts: [{ type: "tmpfs", target: "/scratch" }],
				capDrop: ["ALL"],
				capAdd: ["NET_RAW"],
				stopSignal: "SIGUSR1",
				stopGracePeriodMs: 20_000,
			},
		});
		await worker.assign({ full: true, tasks: [x], networks: [] });
		await waitFor("running", () => last(x.id)?.state === "running");
		const id = byTask(x.id)[0]!.id;
		await waitFor("output", () => rt.logs(id).stdout.includes("CapEff"));
		const out = rt.logs(id).stdout;
		t.match(out, "hi /tmp 65534 box1\n");
		t.match(out, "\nro\n", "read-only rootfs");
		t.match(out, "tmpfs\n", "tmpfs mount writable");
		// nobody has no effective caps; the bounding set shows in the config: only NET_RAW.
		const cfg = JSON.parse(readFileSync(join(rt.inspect(id).dir, "config.json"), "utf8"));
		t.same(cfg.process.capabilities.bounding, ["CAP_NET_RAW"], "cap-drop ALL + cap-add NET_RAW");
		const t0 = Date.now();
		await worker.assign({ full: true, tasks: [{ ...x, desiredState: "shutdown" }], networks: [] });
		await waitFor("shutdown", () => last(x.id)?.state === "shutdown");
		t.ok(Date.now() - t0 < 10_000, "ended by its stop signal, long before the 20 s grace");
		t.match(rt.logs(id).stdout, "got-usr1", "the spec's stop signal reached it");
		t.equal(rt.inspect(id).exitCode, 0);
	},
);

t.test("bad assignments are refused whole with a named error", async (t) => {
	const { worker, nodeId } = await setup(t);
	const good = makeTask({ image, args: ["sleep", "300"] });
	const cases: Array<[string, unknown]> = [
		["wrong node", { ...good, nodeId: "elsewhere" }],
		["bad id", { ...good, id: "../x" }],
		["bad desired state", { ...good, desiredState: "dancing" }],
	];
	for (const [what, bad] of cases) {
		await t.rejects(
			worker.assign({ full: true, tasks: [good, bad as typeof good], networks: [] }),
			InvalidAssignmentError,
			what,
		);
	}
	await t.rejects(worker.assign({ full: true, tasks: [good, good], networks: [] }), /listed twice/);
	t.same(worker.tasks(), [], "nothing was applied");
	await worker.assign({ full: true, tasks: [{ ...good, nodeId }], networks: [] });
	t.equal(worker.tasks().length, 1, "a good one is (positive control)");
});

t.test("an assignments file the worker cannot use is moved aside; the worker starts with none", async (t) => {
	const data = dataDir();
	const nodeId = uniqueName("node");
	mkdirSync(join(data, "worker"), { recursive: true });
	writeFileSync(join(data, "worker", "assignments.json"), "{ torn");
	const { worker } = await startWorker(t, rt, { dataRoot: data, nodeId });
	t.same(worker.tasks(), []);
	t.equal(readFileSync(join(data, "worker", "assignments.json.bad"), "utf8"), "{ torn", "kept for a look");
	await worker.assign({ full: true, tasks: [], networks: [] });
	t.equal(JSON.parse(readFileSync(join(data, "worker", "assignments.json"), "utf8")).version, 1, "a good one written");
});
