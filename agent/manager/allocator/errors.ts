// Named errors of the allocator: refusals a user can act on (a published port someone else holds),
// raised by `service create`/`update` before anything is stored, and the same text as a pending reason.
import { AgentError } from "../../errors.ts";

/** A published port another service already holds (or asks for). */
export class PortInUseError extends AgentError {
	override name = "PortInUseError";
	readonly port: number;
	readonly protocol: "tcp" | "udp";
	readonly service: string;
	constructor(port: number, protocol: "tcp" | "udp", service: string) {
		super(`port ${port}/${protocol} is already in use by service ${service}`, "ERR_PORT_IN_USE");
		this.port = port;
		this.protocol = protocol;
		this.service = service;
	}
}
