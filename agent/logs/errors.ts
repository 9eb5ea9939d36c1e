// Named errors of /tsswarm/logs/1, on both ends: frames that are not messages of the protocol, and
// the refusals a node sends (the asker is not a manager, the task is not this node's).
import { AgentError } from "../errors.ts";

/** A frame that is not a message of the protocol (wrong shape, unknown field, over a bound). */
export class BadLogsMessageError extends AgentError {
	static override status = 502;
	override name = "BadLogsMessageError";
	constructor(peer: string, why: string) {
		super(`bad /tsswarm/logs/1 message from ${peer}: ${why}`, "ERR_BAD_LOGS_MESSAGE");
	}
}

/** A member that is not a manager asked for logs: only managers (which serve the CLI) may. */
export class LogsNotManagerError extends AgentError {
	static override status = 403;
	override name = "LogsNotManagerError";
	constructor(peer: string) {
		super(`peer ${peer} is not a manager and may not read task logs`, "ERR_LOGS_NOT_MANAGER");
	}
}

/** The task asked for has no container on the node asked (it is not, or no longer, this node's). */
export class TaskNotOnNodeError extends AgentError {
	static override status = 404;
	override name = "TaskNotOnNodeError";
	constructor(taskId: string, node: string) {
		super(`task ${taskId} has no container on node ${node}`, "ERR_TASK_NOT_ON_NODE");
	}
}

/** A node that runs tasks of the request could not be asked (down, cut off, agent stopped). */
export class NodeUnreachableError extends AgentError {
	static override status = 503;
	override name = "NodeUnreachableError";
	readonly why: string;
	constructor(node: string, why: string) {
		super(`node ${node} is unreachable: ${why}`, "ERR_NODE_UNREACHABLE");
		this.why = why;
	}
}

/** A node answered a logs request with an error (its code and message as it sent them). */
export class RemoteLogsError extends AgentError {
	static override status = 502;
	override name = "RemoteLogsError";
	constructor(node: string, code: string, message: string) {
		super(`node ${node}: ${message}`, code);
	}
}
