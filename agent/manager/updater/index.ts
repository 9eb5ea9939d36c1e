// agent/manager/updater: rolling updates and rollbacks (leader loop, pure decisions, requests).
export { Updater, type UpdaterOptions } from "./component.ts";
export {
	activeConfig,
	type DecideInput,
	type Decision,
	decide,
	failureOf,
	isUpdating,
	rolledBack,
	type SlotView,
	taskOk,
	updaterOwns,
} from "./decide.ts";
export * from "./errors.ts";
export { rollbackService, type UpdateRequest, updatedService, updateService } from "./requests.ts";
