// Named errors of the role controller: a role change this node could not carry out.
import { AgentError } from "../errors.ts";

export class RoleChangeError extends AgentError {
	static override status = 500;
	override name = "RoleChangeError";
	constructor(to: string, why: string) {
		super(`could not become a ${to}: ${why}`, "ERR_ROLE_CHANGE");
	}
}
