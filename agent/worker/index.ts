// agent/worker: runs this node's tasks — the only part of agent/ that touches the machine
// (runtime/ for containers, overlay-net/ for task networks). See README.md.
export {
	LABEL_NODE_ID,
	LABEL_SERVICE_ID,
	LABEL_SERVICE_NAME,
	LABEL_TASK_ID,
	LABEL_TASK_NAME,
	type SpecContext,
	toContainerSpec,
} from "./container-spec.ts";
export type { WorkerLogger, WorkerRuntime } from "./controller.ts";
export * from "./errors.ts";
export { type NodeWorkerOptions, startNodeWorker } from "./factory.ts";
export type { AssignedNetwork, NetworkingOptions } from "./networking.ts";
export { type Assignment, type StatusReport, Worker, type WorkerEvents, type WorkerOptions } from "./worker.ts";
