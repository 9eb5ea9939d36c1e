// Named errors of service updates and rollbacks.
import { AgentError } from "../../errors.ts";

/** `service rollback` of a service that was never updated. */
export class NoPreviousSpecError extends AgentError {
	static override status = 409;
	override name = "NoPreviousSpecError";
	constructor(service: string) {
		super(`service ${service} has no previous spec to roll back to (it was never updated)`, "ERR_NO_PREVIOUS_SPEC");
	}
}
