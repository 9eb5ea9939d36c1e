// Named errors of the scheduler: a placement a service spec asks for that can never be honoured.
// `service create` validates with these before anything is stored; the scheduler never throws them.
import { AgentError } from "../../errors.ts";

/** A `--constraint` expression that does not parse (no operator, bad key, bad value, unknown key). */
export class InvalidConstraintError extends AgentError {
	override name = "InvalidConstraintError";
	readonly expression: string;
	constructor(expression: string, why: string) {
		super(`invalid constraint ${JSON.stringify(expression)}: ${why}`, "ERR_INVALID_CONSTRAINT");
		this.expression = expression;
	}
}

/** Any other part of a placement (spread preference, platform, reservations, host ports, max replicas). */
export class InvalidPlacementError extends AgentError {
	override name = "InvalidPlacementError";
	constructor(why: string) {
		super(`invalid placement: ${why}`, "ERR_INVALID_PLACEMENT");
	}
}
