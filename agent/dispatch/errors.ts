// Named errors of /tsswarm/dispatch/1, on both ends: what a worker or a manager sent that is not a
// message of the protocol, status reports the leader refuses, and a manager's refusal as the worker sees it.
import { AgentError } from "../errors.ts";

/** A frame that is not a message of the protocol (wrong shape, out of order, over a bound). */
export class BadDispatchMessageError extends AgentError {
	override name = "BadDispatchMessageError";
	constructor(peer: string, why: string) {
		super(`bad /tsswarm/dispatch/1 message from ${peer}: ${why}`, "ERR_BAD_DISPATCH_MESSAGE");
	}
}

/** A status report the leader does not write (unknown task, another node's task, a backwards state). */
export class ReportRefusedError extends AgentError {
	override name = "ReportRefusedError";
	readonly taskId: string;
	constructor(peer: string, taskId: string, why: string) {
		super(`status report from ${peer} for task ${taskId} refused: ${why}`, "ERR_REPORT_REFUSED");
		this.taskId = taskId;
	}
}

/** A member without a node record opened a session (it was removed, or the replica lags). */
export class UnknownNodeError extends AgentError {
	override name = "UnknownNodeError";
	constructor(peer: string) {
		super(`node ${peer} has no record in the store; no dispatcher session for it`, "ERR_UNKNOWN_NODE");
	}
}

/** The leader's dispatcher is not running (leadership is changing): try again shortly. */
export class NoDispatcherError extends AgentError {
	override name = "NoDispatcherError";
	constructor(manager: string) {
		super(`manager ${manager} leads but its dispatcher is not running yet; try again`, "ERR_NO_DISPATCHER");
	}
}

/** The worker's view: the manager ended or refused the session with `serverCode`. */
export class DispatchRefusedError extends AgentError {
	override name = "DispatchRefusedError";
	readonly serverCode: string;
	constructor(peer: string, serverCode: string, message?: string) {
		super(
			`manager ${peer} ended the dispatch session: ${serverCode}${message ? ` (${message})` : ""}`,
			"ERR_DISPATCH_REFUSED",
		);
		this.serverCode = serverCode;
	}
}

/** The other end went silent for longer than the heartbeat deadline. */
export class HeartbeatTimeoutError extends AgentError {
	override name = "HeartbeatTimeoutError";
	constructor(peer: string, ms: number) {
		super(`no heartbeat from ${peer} within ${ms} ms`, "ERR_HEARTBEAT_TIMEOUT");
	}
}
