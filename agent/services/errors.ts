// Named errors of service specs: a refusal names the field, before anything is stored.
import { AgentError } from "../errors.ts";

export class InvalidServiceSpecError extends AgentError {
	static override status = 400;
	override name = "InvalidServiceSpecError";
	readonly field: string;
	constructor(field: string, why: string) {
		super(`invalid service spec: ${field} ${why}`, "ERR_INVALID_SERVICE");
		this.field = field;
	}
}
