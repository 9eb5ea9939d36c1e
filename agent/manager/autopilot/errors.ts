// Named errors of autopilot's settings (`tsswarm swarm update`), refused before anything is stored.
import { AgentError } from "../../errors.ts";

export class InvalidAutopilotSettingsError extends AgentError {
	static override status = 400;
	override name = "InvalidAutopilotSettingsError";
	constructor(why: string) {
		super(`invalid autopilot settings: ${why}`, "ERR_INVALID_AUTOPILOT");
	}
}
