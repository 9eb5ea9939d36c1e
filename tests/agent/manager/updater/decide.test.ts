// The updater's pure decisions, run together with the orchestrator's plan() against a simulated
// cluster: parallelism, order, delay, monitor window, progress deadline, health gate, failure ratio
// and actions (pause, continue, rollback), and resuming from the store alone after a leader change.
import t from "tap";
import { type PlanNode, type PlanOp, plan, type Versioned } from "../../../../agent/manager/orchestrator/index.ts";
import { decide, updaterOwns } from "../../../../agent/manager/updater/index.ts";
import {
	isTerminal,
	type Service,
	type ServiceSpec,
	type Task,
	type TaskStatus,
	validateServiceSpec,
} from "../../../../agent/services/index.ts";

const T0 = Date.parse("2026-12-04T12:00:00Z");
const STEP = 100;
const NODES: PlanNode[] = [{ id: "n1", availability: "active" }];

function spec(image: string, o: Record<string, unknown> = {}): ServiceSpec {
	const { health, ...rest } = o;
	return validateServiceSpec({
		name: "web",
		mode: { kind: "replicated", replicas: 6 },
		task: { container: { image, ...(health ? { healthcheck: { test: ["CMD-SHELL", "true"] } } : {}) } },
		...rest,
	});
}

/** What a simulated worker does with a task in one step: the next status, or none. */
type Behaviour = (t: Task, now: number) => Partial<TaskStatus> | undefined;

/** Tasks take 300 ms to start, then report healthy when checked; stopped tasks end in one step. */
const healthy: Behaviour = (t, now) =>
	t.status.state === "new"
		? { state: "starting" }
		: t.status.state === "starting" && now - Date.parse(t.createdAt) >= 300
			? { state: "running", ...(t.spec.container.healthcheck ? { health: "healthy" } : {}) }
			: undefined;

class Sim {
	now = T0;
	svc: Versioned<Service>;
	tasks: Versioned<Task>[] = [];
	stopAsked = new Map<string, number>();
	minRunning = Number.POSITIVE_INFINITY;
	maxInFlight = 0;
	log: string[] = [];
	behave: Behaviour = healthy;
	/** Tasks created while an update ran: one per slot unless something fought over a slot. */
	created = 0;

	constructor(s: ServiceSpec) {
		this.svc = { version: 1, value: { id: "svc", spec: s, specVersion: 1, createdAt: "", updatedAt: "" } };
		for (let i = 0; i < 5; i++) this.step(); // converge on v1
	}

	private apply(ops: PlanOp[]): void {
		const m = new Map(this.tasks.map((x) => [x.value.id, x]));
		for (const op of ops) {
			if (op.op === "create") {
				m.set(op.task.id, { version: 1, value: { ...op.task, nodeId: "n1" } });
				if (this.svc.value.updateStatus) this.created++;
			} else if (op.op === "update") {
				const cur = m.get(op.id);
				if (!cur || cur.version !== op.version) throw new Error(`stale write of ${op.id}`);
				m.set(op.id, { version: op.version + 1, value: op.task });
			} else m.delete(op.id);
		}
		this.tasks = [...m.values()];
	}

	private worker(): void {
		this.tasks = this.tasks.map((x) => {
			const t = x.value;
			let next: Partial<TaskStatus> | undefined;
			if (t.desiredState === "shutdown" && !isTerminal(t.status.state)) next = { state: "shutdown" };
			else if (t.desiredState === "running") next = this.behave(t, this.now);
			if (!next) return x;
			const status = { ...t.status, message: "", ...next, timestamp: new Date(this.now).toISOString() } as TaskStatus;
			return { version: x.version + 1, value: { ...t, status } };
		});
	}

	/** One round: the worker reports, the orchestrator plans, the updater decides. */
	step(): void {
		this.now += STEP;
		this.worker();
		this.apply(plan([this.svc], this.tasks, NODES, { now: this.now, owns: updaterOwns }));
		const d = decide({ service: this.svc, tasks: this.tasks, nodes: NODES, now: this.now, stopAsked: this.stopAsked });
		this.apply(d.ops);
		if (d.service) {
			const before = this.svc.value.updateStatus?.state;
			this.svc = { version: this.svc.version + 1, value: d.service };
			if (d.service.updateStatus?.state !== before) this.log.push(`${this.now - T0} ${d.service.updateStatus?.state}`);
		}
		const liveTasks = this.tasks.filter((x) => x.value.desiredState === "running").map((x) => x.value);
		if (this.svc.value.updateStatus) {
			this.minRunning = Math.min(this.minRunning, this.running().length);
			const inFlight = liveTasks.filter(
				(t) => t.specVersion === this.svc.value.specVersion && t.status.state !== "running",
			);
			const stopping = this.tasks.filter(
				(x) => x.value.desiredState === "shutdown" && !isTerminal(x.value.status.state),
			);
			this.maxInFlight = Math.max(this.maxInFlight, inFlight.length + stopping.length);
		}
	}

	running(): Task[] {
		return this.tasks.map((x) => x.value).filter((t) => t.desiredState === "running" && t.status.state === "running");
	}

	state(): string | undefined {
		return this.svc.value.updateStatus?.state;
	}

	/** `service update`: the new spec and status as updateService writes them. */
	update(next: ServiceSpec): void {
		const s = this.svc.value;
		this.svc = {
			version: this.svc.version + 1,
			value: {
				...s,
				spec: next,
				previousSpec: s.spec,
				previousSpecVersion: s.specVersion,
				specVersion: Math.max(s.specVersion, s.previousSpecVersion ?? 0) + 1,
				updateStatus: { state: "updating", startedAt: new Date(this.now).toISOString(), message: "update in progress" },
			},
		};
	}

	until(states: string[], maxSteps = 2000): number {
		for (let i = 0; i < maxSteps; i++) {
			if (states.includes(this.state() ?? "")) return this.now;
			this.step();
		}
		throw new Error(`no ${states.join("/")} after ${maxSteps} steps; at ${this.state()} (${this.log.join(", ")})`);
	}

	images(): string[] {
		return [...new Set(this.running().map((t) => t.image))];
	}

	/** Per slot: how many tasks are live (desired running) at once; each must be 1. */
	perSlot(): number[] {
		const n = new Map<number, number>();
		for (const x of this.tasks)
			if (x.value.desiredState === "running") n.set(x.value.slot!, (n.get(x.value.slot!) ?? 0) + 1);
		return [...n.values()];
	}
}

t.test("stop-first, parallelism 2: never more than 2 slots down, ends on the new image", async (t) => {
	const sim = new Sim(spec("busybox:1", { update: { parallelism: 2, monitorMs: 1000 } }));
	t.equal(sim.running().length, 6, "control: 6 running before the update");
	sim.update(spec("busybox:2", { update: { parallelism: 2, monitorMs: 1000 } }));
	sim.until(["completed"]);
	t.equal(sim.minRunning, 4, "never fewer than 4 running (and it did dip: stop-first)");
	t.ok(sim.maxInFlight <= 2, `at most 2 slots in flight (saw ${sim.maxInFlight})`);
	t.same(sim.images(), ["busybox:2"], "every running task is on the new image");
	t.equal(sim.created, 6, "one new task per slot");
	t.same(sim.perSlot(), [1, 1, 1, 1, 1, 1], "each slot has one live task");
	t.equal(sim.svc.value.updateStatus?.message, "update completed");
	t.ok(sim.svc.value.updateStatus?.completedAt, "completedAt set");
});

t.test("start-first, parallelism 2: never fewer than 6 running", async (t) => {
	const u = { parallelism: 2, order: "start-first", monitorMs: 1000 };
	const sim = new Sim(spec("busybox:1", { update: u }));
	sim.update(spec("busybox:2", { update: u }));
	sim.until(["completed"]);
	t.equal(sim.minRunning, 6, "never fewer than 6 running");
	t.equal(sim.created, 6, "one new task per slot: the orchestrator leaves the updater's slots alone");
	t.same(sim.images(), ["busybox:2"]);
	t.same(sim.perSlot(), [1, 1, 1, 1, 1, 1], "the old task of each slot was shut down");
});

t.test("parallelism 0 updates every slot at once; parallelism 1 one at a time", async (t) => {
	const all = new Sim(spec("a", { update: { parallelism: 0, monitorMs: 0 } }));
	all.update(spec("b", { update: { parallelism: 0, monitorMs: 0 } }));
	all.until(["completed"]);
	t.equal(all.maxInFlight, 6, "all 6 in flight together");
	const one = new Sim(spec("a", { update: { parallelism: 1, monitorMs: 0 } }));
	one.update(spec("b", { update: { parallelism: 1, monitorMs: 0 } }));
	one.until(["completed"]);
	t.equal(one.maxInFlight, 1, "one at a time");
	t.equal(one.minRunning, 5);
});

t.test("delay between tasks and the monitor window before completed", async (t) => {
	const u = { parallelism: 6, delayMs: 0, monitorMs: 3000 };
	const sim = new Sim(spec("a", { update: u }));
	sim.update(spec("b", { update: u }));
	const started = sim.now;
	const done = sim.until(["completed"]);
	t.ok(done - started >= 3000, `completed only after the monitor window (${done - started} ms)`);
	t.ok(done - started < 3000 + 10 * STEP, "and soon after it");

	const d = { parallelism: 2, delayMs: 2000, monitorMs: 0 };
	const slow = new Sim(spec("a", { update: d }));
	slow.update(spec("b", { update: d }));
	const t1 = slow.now;
	const end = slow.until(["completed"]);
	// 3 batches of 2 with a 2 s delay after each of the first two.
	t.ok(end - t1 >= 4000, `delay holds the next batch (${end - t1} ms)`);
	t.ok(end - t1 < 4000 + 20 * STEP, "and only the delay");
});

t.test("health gates progress: running but not yet healthy is not updated", async (t) => {
	const u = { parallelism: 1, monitorMs: 0 };
	const sim = new Sim(spec("a", { update: u }));
	let healthyAfter = Number.POSITIVE_INFINITY;
	sim.behave = (task, now) => {
		if (task.status.state === "new") return { state: "running", health: "starting" };
		if (task.status.health === "starting" && now >= healthyAfter) return { health: "healthy" };
		return undefined;
	};
	sim.update(spec("b", { update: u, health: true }));
	for (let i = 0; i < 30; i++) sim.step();
	const newOnes = sim.tasks.filter((x) => x.value.specVersion === 2);
	t.equal(newOnes.length, 1, "a single new task while the first one is not healthy");
	t.equal(sim.state(), "updating");
	healthyAfter = sim.now;
	sim.until(["completed"]);
	t.same(sim.images(), ["b"]);
});

t.test("failure action pause (default): a failing new task pauses the update", async (t) => {
	const sim = new Sim(spec("a", { update: { parallelism: 2 } }));
	sim.behave = (task) => (task.status.state === "new" ? { state: "failed", err: "boom", exitCode: 1 } : undefined);
	sim.update(spec("bad", { update: { parallelism: 2 } }));
	sim.until(["paused"]);
	const st = sim.svc.value.updateStatus!;
	t.match(st.message, /^update paused due to failure or early termination of task \w+: task failed: boom/);
	t.ok(st.failedTasks?.length, "the failed task is recorded in the service");
	const created = sim.tasks.filter((x) => x.value.specVersion === 2).length;
	for (let i = 0; i < 20; i++) sim.step();
	t.equal(sim.state(), "paused", "stays paused");
	t.ok(sim.running().length >= 4, "the slots not yet updated keep running the old image");
	t.ok(
		sim.running().every((x) => x.image === "a"),
		"and only those",
	);
	t.ok(
		sim.tasks.filter((x) => x.value.specVersion === 2).length <= created + 2,
		"no further slots are started (only the orchestrator's restarts of the failed slots)",
	);
});

t.test("failure action continue: failures are recorded and the update goes on", async (t) => {
	const u = { parallelism: 2, failureAction: "continue", monitorMs: 0 };
	const sim = new Sim(spec("a", { update: u }));
	sim.behave = (task) =>
		task.status.state === "new"
			? task.slot === 1
				? { state: "failed", exitCode: 2 }
				: { state: "running" }
			: undefined;
	sim.update(spec("b", { update: u }));
	sim.until(["completed"]);
	t.equal(sim.svc.value.updateStatus?.state, "completed");
	t.same(
		sim
			.running()
			.map((x) => x.slot)
			.sort(),
		[2, 3, 4, 5, 6],
		"every slot but the failing one runs the new image",
	);
	t.ok(sim.running().every((x) => x.image === "b"));
});

t.test("failure action rollback: back to the previous spec and version, with the rollback config", async (t) => {
	const sim = new Sim(spec("a@sha256:1111", {}));
	const oldIds = new Set(sim.running().map((x) => x.id));
	sim.behave = (task) =>
		task.status.state === "new"
			? task.image === "bad"
				? { state: "failed", exitCode: 1 }
				: { state: "running" }
			: undefined;
	sim.update(
		spec("bad", { update: { parallelism: 1, failureAction: "rollback" }, rollback: { parallelism: 0, monitorMs: 0 } }),
	);
	sim.until(["rollback_started"]);
	t.match(sim.svc.value.updateStatus?.message, /^update rolled back due to failure or early termination of task/);
	t.equal(sim.svc.value.specVersion, 1, "the previous spec version is restored");
	t.equal(sim.svc.value.spec.task.container.image, "a@sha256:1111", "the previous image, digest kept");
	sim.until(["rollback_completed"]);
	t.same(sim.images(), ["a@sha256:1111"]);
	const kept = sim.running().filter((x) => oldIds.has(x.id)).length;
	t.equal(kept, 5, "tasks never touched by the failed update were kept, not replaced");
	t.same(sim.perSlot(), [1, 1, 1, 1, 1, 1]);
});

t.test("progress deadline: a task that never starts fails the update instead of hanging", async (t) => {
	const u = { parallelism: 1, timeoutMs: 2000 };
	const sim = new Sim(spec("a", { update: u }));
	sim.behave = (task) => (task.status.state === "new" && task.image !== "never" ? { state: "running" } : undefined);
	sim.update(spec("never", { update: u }));
	const from = sim.now;
	const at = sim.until(["paused"]);
	t.ok(at - from >= 2000 && at - from < 2000 + 5 * STEP, `paused at the deadline (${at - from} ms)`);
	t.match(sim.svc.value.updateStatus?.message, /task not running within 2 s \(update timeout\)/);
	const stuck = sim.tasks.find((x) => x.value.specVersion === 2)!;
	t.equal(stuck.value.desiredState, "shutdown", "the stuck task is shut down");
});

t.test("unhealthy within the monitor window is a failure; max failure ratio tolerates some", async (t) => {
	const u = { parallelism: 0, maxFailureRatio: 0.4, monitorMs: 1000 };
	const sim = new Sim(spec("a", { update: u }));
	sim.behave = (task) => {
		if (task.status.state === "new") return { state: "running", health: "healthy" };
		if (task.image === "b" && task.slot! <= 2 && task.status.health === "healthy") return { health: "unhealthy" };
		return undefined;
	};
	sim.update(spec("b", { update: u, health: true }));
	sim.until(["completed"]);
	t.equal(sim.svc.value.updateStatus?.failedTasks, undefined, "completed: 2 of 6 failed is within 0.4");

	const strict = new Sim(spec("a", { update: { ...u, maxFailureRatio: 0.3 } }));
	strict.behave = sim.behave;
	strict.update(spec("b", { update: { ...u, maxFailureRatio: 0.3 }, health: true }));
	strict.until(["paused"]);
	t.match(strict.svc.value.updateStatus?.message, /task is unhealthy/, "2 of 6 is beyond 0.3: paused");
});

t.test("a new leader resumes from the store alone, with no slot served twice", async (t) => {
	const u = { parallelism: 2, monitorMs: 0 };
	const sim = new Sim(spec("a", { update: u }));
	let slow = true;
	sim.behave = (task) => (task.status.state === "new" && !slow ? { state: "running" } : undefined);
	sim.update(spec("b", { update: u }));
	for (let i = 0; i < 10; i++) sim.step();
	const inFlight = sim.tasks.filter((x) => x.value.specVersion === 2).length;
	t.equal(inFlight, 2, "two new tasks on their way");
	// Leader change: the in-memory part is gone; decisions come from the service and tasks only.
	sim.stopAsked = new Map();
	const again = decide({ service: sim.svc, tasks: sim.tasks, nodes: NODES, now: sim.now, stopAsked: sim.stopAsked });
	t.same(again.ops, [], "nothing new is started or stopped: the two slots in flight are recognised");
	t.same(
		again.slots.map((s) => s.state),
		["updating", "updating", "pending", "pending", "pending", "pending"],
	);
	slow = false;
	sim.until(["completed"]);
	t.same(sim.images(), ["b"]);
	t.same(sim.perSlot(), [1, 1, 1, 1, 1, 1]);
	t.equal(sim.tasks.filter((x) => x.value.specVersion === 2).length, 6, "exactly one new task per slot was made");
});

t.test("updaterOwns: only while updating, and only slots still on another version", async (t) => {
	const s = spec("a");
	const svc: Service = { id: "svc", spec: s, specVersion: 2, createdAt: "", updatedAt: "" };
	const task = (v: number, desired: Task["desiredState"]): Task => ({
		id: `t${v}${desired}`,
		serviceId: "svc",
		serviceName: "web",
		slot: 1,
		specVersion: v,
		spec: s.task,
		image: "a",
		desiredState: desired,
		status: { state: "running", message: "", timestamp: new Date(T0).toISOString() },
		networks: [],
		createdAt: new Date(T0 + v).toISOString(),
	});
	t.notOk(updaterOwns(svc, [task(1, "running")]), "no update running: the orchestrator's");
	const upd = { ...svc, updateStatus: { state: "updating" as const } };
	t.ok(updaterOwns(upd, [task(1, "running")]), "an old live task: the updater's");
	t.ok(updaterOwns(upd, [task(1, "shutdown")]), "old, stopped, not yet replaced: the updater's");
	t.notOk(updaterOwns(upd, [task(1, "shutdown"), task(2, "running")]), "replaced: the orchestrator's again");
	t.notOk(
		updaterOwns({ ...upd, updateStatus: { state: "paused" } }, [task(1, "running")]),
		"paused: the orchestrator's",
	);
});
