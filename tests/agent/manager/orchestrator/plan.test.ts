// The orchestrator's pure decisions: slots filled and trimmed, restart policy (condition, delay,
// attempts), node loss, global services following nodes, jobs to completion, removal and history.
import t from "tap";
import { type PlanNode, type PlanOp, plan, type Versioned } from "../../../../agent/manager/orchestrator/plan.ts";
import { type Service, type Task, type TaskState, validateServiceSpec } from "../../../../agent/services/index.ts";

const T0 = Date.parse("2026-12-04T12:00:00Z");

function service(id: string, spec: Record<string, unknown>): Versioned<Service> {
	const s = validateServiceSpec({ name: id, task: { container: { image: "busybox" } }, ...spec });
	return { version: 1, value: { id, spec: s, specVersion: 1, createdAt: "", updatedAt: "" } };
}

/** Applies ops to the task list, as the store would (for multi-pass scenarios). */
function apply(tasks: Versioned<Task>[], ops: PlanOp[]): Versioned<Task>[] {
	const m = new Map(tasks.map((x) => [x.value.id, x]));
	for (const op of ops) {
		if (op.op === "create") m.set(op.task.id, { version: 1, value: op.task });
		else if (op.op === "update") m.set(op.id, { version: op.version + 1, value: op.task });
		else m.delete(op.id);
	}
	return [...m.values()];
}

function report(
	tasks: Versioned<Task>[],
	pick: (t: Task) => boolean,
	state: TaskState,
	now: number,
	exitCode?: number,
) {
	return tasks.map((x) =>
		pick(x.value)
			? {
					version: x.version + 1,
					value: {
						...x.value,
						nodeId: x.value.nodeId ?? "n1",
						status: {
							state,
							message: state,
							timestamp: new Date(now).toISOString(),
							...(exitCode !== undefined ? { exitCode } : {}),
						},
					},
				}
			: x,
	);
}

const nodes = (...ids: string[]): PlanNode[] => ids.map((id) => ({ id, availability: "active" }));
const liveSlots = (tasks: Versioned<Task>[]) =>
	tasks
		.filter((x) => x.value.desiredState === "running")
		.map((x) => x.value.slot)
		.sort();

t.test("replicated: fills slots, scales down from the top, converges to no ops", async (t) => {
	let svc = service("web", { mode: { kind: "replicated", replicas: 3 } });
	let tasks = apply([], plan([svc], [], nodes("n1"), { now: T0 }));
	t.same(liveSlots(tasks), [1, 2, 3], "three slots");
	t.same(plan([svc], tasks, nodes("n1"), { now: T0 }), [], "a second pass changes nothing");
	svc = service("web", { mode: { kind: "replicated", replicas: 1 } });
	tasks = apply(tasks, plan([svc], tasks, nodes("n1"), { now: T0 }));
	t.same(liveSlots(tasks), [1], "scaled to 1: slots 2 and 3 shut down");
	t.equal(tasks.filter((x) => x.value.desiredState === "shutdown").length, 2);
});

t.test("restart policy: any restarts after the delay, none never, attempts bounded", async (t) => {
	const svc = service("w", {
		task: { container: { image: "busybox" }, restartPolicy: { condition: "any", delayMs: 2000, maxAttempts: 2 } },
	});
	let tasks = apply([], plan([svc], [], nodes("n1"), { now: T0 }));
	tasks = report(tasks, () => true, "failed", T0, 1);
	let ops = plan([svc], tasks, nodes("n1"), { now: T0 + 500 });
	t.same(
		ops.map((o) => o.op),
		["update"],
		"the failed task is shut down, no replacement yet (delay)",
	);
	tasks = apply(tasks, ops);
	t.same(plan([svc], tasks, nodes("n1"), { now: T0 + 1500 }), [], "still inside the delay: nothing");
	ops = plan([svc], tasks, nodes("n1"), { now: T0 + 2000 });
	t.same(
		ops.map((o) => o.op),
		["create"],
		"after the delay: a replacement for slot 1",
	);
	tasks = apply(tasks, ops);
	// Two more failures: the second attempt is the last one.
	for (const n of [1, 2]) {
		tasks = report(tasks, (x) => x.status.state === "new", "failed", T0 + 3000 * n, 1);
		tasks = apply(tasks, plan([svc], tasks, nodes("n1"), { now: T0 + 3000 * n }));
		tasks = apply(tasks, plan([svc], tasks, nodes("n1"), { now: T0 + 3000 * n + 2000 }));
	}
	t.equal(tasks.length, 3, "an original and two replacements, then no more (maxAttempts 2)");
	t.same(liveSlots(tasks), [], "no live task left");

	const none = service("n", { task: { container: { image: "busybox" }, restartPolicy: { condition: "none" } } });
	let nt = report(apply([], plan([none], [], nodes("n1"), { now: T0 })), () => true, "complete", T0, 0);
	nt = apply(nt, plan([none], nt, nodes("n1"), { now: T0 + 60_000 }));
	t.equal(nt.length, 1, "condition none: never replaced");

	const onf = service("o", {
		task: { container: { image: "busybox" }, restartPolicy: { condition: "on-failure", delayMs: 0 } },
	});
	let ot = report(apply([], plan([onf], [], nodes("n1"), { now: T0 })), () => true, "complete", T0, 0);
	ot = apply(ot, plan([onf], ot, nodes("n1"), { now: T0 + 1 }));
	t.equal(ot.length, 1, "on-failure: a clean exit is not restarted");
	ot = report(ot, () => true, "failed", T0 + 2, 3);
	t.equal(
		plan([onf], ot, nodes("n1"), { now: T0 + 3 }).filter((o) => o.op === "create").length,
		1,
		"on-failure: a failure is",
	);
});

t.test("a task on a node down past the grace period, drained or gone is replaced", async (t) => {
	const svc = service("web", { mode: { kind: "replicated", replicas: 2 } });
	let tasks = apply([], plan([svc], [], nodes("n1", "n2"), { now: T0 }));
	tasks = tasks.map((x, i) => ({
		...x,
		value: { ...x.value, nodeId: i === 0 ? "n1" : "n2", status: { ...x.value.status, state: "running" } },
	}));
	const down: PlanNode[] = [{ id: "n1", availability: "active", down: { since: T0 } }, ...nodes("n2")];
	t.same(plan([svc], tasks, down, { now: T0 + 1000, downGraceMs: 5000 }), [], "inside the grace period: kept");
	const ops = plan([svc], tasks, down, { now: T0 + 6000, downGraceMs: 5000 });
	t.same(ops.map((o) => o.op).sort(), ["create", "update"], "past it: shut down (orphaned) and replaced");
	const upd = ops.find((o) => o.op === "update");
	t.equal(upd?.op === "update" && upd.task.status.state, "orphaned");
	const drained: PlanNode[] = [{ id: "n1", availability: "drain" }, ...nodes("n2")];
	t.equal(plan([svc], tasks, drained, { now: T0 }).filter((o) => o.op === "create").length, 1, "drain moves it");
	t.equal(
		plan([svc], tasks, nodes("n2"), { now: T0 }).filter((o) => o.op === "create").length,
		1,
		"a removed node too",
	);
});

t.test("global: one task per eligible node, a node that joins later gets one", async (t) => {
	const svc = service("agent", { mode: { kind: "global" } });
	let tasks = apply([], plan([svc], [], nodes("n1", "n2"), { now: T0 }));
	t.same(tasks.map((x) => x.value.nodeId).sort(), ["n1", "n2"]);
	tasks = apply(tasks, plan([svc], tasks, nodes("n1", "n2", "n3"), { now: T0 }));
	t.same(tasks.map((x) => x.value.nodeId).sort(), ["n1", "n2", "n3"], "n3 joined: it gets one");
	const fits = plan([svc], tasks, nodes("n1", "n2", "n3"), { now: T0, globalFits: (_s, n) => n.id !== "n2" });
	t.same(
		fits.map((o) => o.op),
		["update"],
		"a node the placement does not admit: its task shut down",
	);
});

t.test("global: a node down for less than the grace period keeps its task", async (t) => {
	const svc = service("agent", { mode: { kind: "global" } });
	const tasks = apply([], plan([svc], [], nodes("n1", "n2"), { now: T0 }));
	const blip: PlanNode[] = [
		{ id: "n1", availability: "active" },
		{ id: "n2", availability: "active", down: { since: T0 } },
	];
	t.same(
		plan([svc], tasks, blip, { now: T0 + 1000, downGraceMs: 5000 }),
		[],
		"down 1 s of a 5 s grace: nothing changes",
	);
	const gone = plan([svc], tasks, blip, { now: T0 + 6000, downGraceMs: 5000 });
	t.same(
		gone.map((o) => (o.op === "update" ? `${o.op} ${o.task.nodeId} ${o.task.desiredState}` : o.op)),
		["update n2 shutdown"],
		"control: down past the grace, its task is shut down",
	);
});

t.test("replicated job: maxConcurrent at a time until totalCompletions", async (t) => {
	const svc = service("job", { mode: { kind: "replicated-job", maxConcurrent: 2, totalCompletions: 3 } });
	let tasks = apply([], plan([svc], [], nodes("n1"), { now: T0 }));
	t.equal(tasks.length, 2, "two at once");
	tasks = report(tasks, (x) => x.slot === 1, "complete", T0, 0);
	tasks = apply(tasks, plan([svc], tasks, nodes("n1"), { now: T0 + 1 }));
	t.equal(
		tasks.filter((x) => x.value.desiredState === "running" && x.value.status.state !== "complete").length,
		2,
		"a third starts",
	);
	tasks = report(tasks, (x) => x.status.state !== "complete", "complete", T0 + 2, 0);
	tasks = apply(tasks, plan([svc], tasks, nodes("n1"), { now: T0 + 3 }));
	t.equal(tasks.filter((x) => x.value.status.state === "complete").length, 3, "three completions");
	t.same(
		plan([svc], tasks, nodes("n1"), { now: T0 + 4 }).filter((o) => o.op === "create"),
		[],
		"and no more",
	);
});

t.test("a removed service's tasks are forgotten; history is bounded", async (t) => {
	const svc = service("web", { mode: { kind: "replicated", replicas: 2 } });
	let tasks = apply([], plan([svc], [], nodes("n1"), { now: T0 }));
	tasks = tasks.map((x) => ({
		...x,
		value: { ...x.value, nodeId: "n1", status: { ...x.value.status, state: "running" } },
	}));
	t.same(
		plan([], tasks, nodes("n1"), { now: T0 }).map((o) => o.op),
		["delete", "delete"],
		"service gone: its tasks are deleted (the workers remove their containers)",
	);

	const flaky = service("f", {
		task: { container: { image: "busybox" }, restartPolicy: { condition: "any", delayMs: 0 } },
	});
	let ft = apply([], plan([flaky], [], nodes("n1"), { now: T0 }));
	for (let i = 1; i <= 9; i++) {
		ft = report(ft, (x) => x.desiredState === "running", "failed", T0 + i * 10, 1);
		ft = apply(ft, plan([flaky], ft, nodes("n1"), { now: T0 + i * 10 + 1 }));
	}
	ft = apply(ft, plan([flaky], ft, nodes("n1"), { now: T0 + 1000 }));
	t.ok(ft.length <= 6, `history bounded: ${ft.length} tasks (5 terminal + 1 live)`);
});
