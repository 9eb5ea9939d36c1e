// Named errors of the manager (requests it refuses before anything is stored).
import { AgentError } from "../errors.ts";

export class InvalidNetworkSpecError extends AgentError {
	override name = "InvalidNetworkSpecError";
	constructor(why: string) {
		super(`invalid network: ${why}`, "ERR_INVALID_NETWORK");
	}
}

export class NetworkInUseError extends AgentError {
	override name = "NetworkInUseError";
	constructor(name: string, by: string) {
		super(`network ${name} is in use by ${by}`, "ERR_NETWORK_IN_USE");
	}
}

export class BadManagerRequestError extends AgentError {
	override name = "BadManagerRequestError";
	constructor(peer: string, why: string) {
		super(`bad request on /tsswarm/manager/1 from ${peer}: ${why}`, "ERR_BAD_REQUEST");
	}
}
