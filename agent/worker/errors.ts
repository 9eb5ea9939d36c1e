// Named errors of the worker: a refused assignment says which task and field, a bad file on disk
// says which file; task failures end in a task's status, these are for the caller.
import { AgentError } from "../errors.ts";

/** An assignment from the dispatcher that cannot be run as given; nothing of it was applied. */
export class InvalidAssignmentError extends AgentError {
	override name = "InvalidAssignmentError";
	static readonly code = "ERR_INVALID_ASSIGNMENT";
	constructor(why: string) {
		super(`invalid assignment: ${why}`, InvalidAssignmentError.code);
	}
}

/** DATA/worker/assignments.json is not what the worker wrote (torn by hand, other version). */
export class AssignmentsFileError extends AgentError {
	override name = "AssignmentsFileError";
	static readonly code = "ERR_ASSIGNMENTS_FILE";
	readonly path: string;
	constructor(path: string, why: string) {
		super(`cannot use ${path}: ${why}`, AssignmentsFileError.code);
		this.path = path;
	}
}

/** assign() or setConnected() before start() or after stop(). */
export class WorkerNotRunningError extends AgentError {
	override name = "WorkerNotRunningError";
	static readonly code = "ERR_WORKER_NOT_RUNNING";
	constructor(what: string) {
		super(`the worker is not running: ${what} needs start() first`, WorkerNotRunningError.code);
	}
}

/** A task is attached to networks, but this worker was made without an overlay driver. */
export class NetworkingUnavailableError extends AgentError {
	override name = "NetworkingUnavailableError";
	static readonly code = "ERR_NETWORKING_UNAVAILABLE";
	constructor(taskId: string) {
		super(
			`task ${taskId} has network attachments, but this worker has no overlay driver`,
			NetworkingUnavailableError.code,
		);
	}
}

/** A task's secret or config cannot be given to it: its data is not here, or there is no tmpfs to keep it on. */
export class TaskFileError extends AgentError {
	override name = "TaskFileError";
	static readonly code = "ERR_TASK_FILE";
	constructor(why: string) {
		super(why, TaskFileError.code);
	}
}
