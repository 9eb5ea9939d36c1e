// Tasks and workers for the worker tests: a task made from a validated service spec, a worker
// on its own data dir (stopped in teardown), and its status reports collected in order.
import t from "tap";
import { type Task, type TaskState, validateServiceSpec } from "../../../agent/services/index.ts";
import { type StatusReport, Worker, type WorkerOptions } from "../../../agent/worker/index.ts";
import type { Runtime } from "../../../runtime/index.ts";
import { tempDir, uniqueName } from "../../helpers/index.ts";

const say = (level: string) => (obj: object, msg?: string) => console.error(level, msg, JSON.stringify(obj));
/** Silent unless WORKER_TEST_LOG is set (then warnings and errors go to stderr). */
export const quiet = process.env.WORKER_TEST_LOG
	? { info() {}, warn: say("warn"), error: say("error"), debug() {} }
	: { info() {}, warn() {}, error() {}, debug() {} };

// Data dirs go when the file ends, after every worker of its tests has stopped (and saved).
const dirs: Array<{ remove: () => void }> = [];
t.teardown(() => {
	for (const d of dirs) d.remove();
});

/** A worker data dir, removed at the end of the file. */
export function dataDir(): string {
	const d = tempDir("worker-data-");
	dirs.push(d);
	return d.path;
}

export interface TaskOptions {
	id?: string;
	service?: string;
	slot?: number;
	args: string[];
	image: string;
	desired?: Task["desiredState"];
	container?: Record<string, unknown>;
	restartPolicy?: Record<string, unknown>;
	networks?: Task["networks"];
}

export function makeTask(o: TaskOptions): Task {
	const service = o.service ?? uniqueName("svc");
	const spec = validateServiceSpec({
		name: service,
		// sleep as pid 1 ignores SIGTERM: a short grace keeps removals quick.
		task: {
			container: { image: o.image, args: o.args, stopGracePeriodMs: 500, ...o.container },
			restartPolicy: o.restartPolicy,
		},
	});
	return {
		id: o.id ?? uniqueName("task"),
		serviceId: `id-${service}`,
		serviceName: service,
		slot: o.slot ?? 1,
		specVersion: 1,
		spec: spec.task,
		image: o.image,
		desiredState: o.desired ?? "running",
		status: { state: "assigned", message: "assigned", timestamp: new Date().toISOString() },
		networks: o.networks ?? [],
		createdAt: new Date().toISOString(),
	};
}

export interface Collected {
	worker: Worker;
	reports: StatusReport[];
	batches: number;
	states(taskId: string): TaskState[];
	last(taskId: string): StatusReport["status"] | undefined;
}

/** A started worker whose reports are collected; stopped (containers left to the runtime's teardown) at the end. */
export async function startWorker(
	tt: { teardown(fn: () => unknown): void },
	rt: Runtime,
	o: { dataRoot: string; nodeId: string } & Partial<WorkerOptions>,
): Promise<Collected> {
	const worker = new Worker({ runtime: rt, logger: quiet, batchMs: 5, healthPollMs: 50, ...o });
	const c: Collected = {
		worker,
		reports: [],
		batches: 0,
		states: (id) => c.reports.filter((r) => r.taskId === id).map((r) => r.status.state),
		last: (id) => c.reports.filter((r) => r.taskId === id).at(-1)?.status,
	};
	worker.on("status", (batch) => {
		c.batches++;
		c.reports.push(...batch);
	});
	tt.teardown(() => worker.stop());
	await worker.start();
	return c;
}
