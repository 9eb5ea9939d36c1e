// Published-port rules shared by the allocator's pass and `service create`/`update`: a mesh
// (ingress) port is one service's cluster-wide; a mode=host port clashes only with mesh ports.
import type { PortSpec, Service, ServiceSpec } from "../../services/index.ts";
import { PortInUseError } from "./errors.ts";
import type { Versioned } from "./types.ts";

const clashes = (a: PortSpec, b: PortSpec) =>
	a.publishedPort !== undefined &&
	a.publishedPort === b.publishedPort &&
	a.protocol === b.protocol &&
	(a.publishMode === "ingress" || b.publishMode === "ingress");

/**
 * Refuses (PortInUseError) a spec publishing a port another service holds (its allocated endpoint)
 * or asks for (its spec). The service of the same name (the one being updated) does not count.
 */
export function checkPorts(services: ReadonlyArray<Versioned<Service>>, spec: ServiceSpec): void {
	const others = services
		.filter((r) => r.value.spec.name !== spec.name)
		.sort((a, b) => (a.value.spec.name < b.value.spec.name ? -1 : 1));
	for (const p of spec.endpoint.ports) {
		if (p.publishedPort === undefined) continue;
		for (const o of others) {
			const held = [...(o.value.endpoint?.ports ?? []), ...o.value.spec.endpoint.ports];
			if (held.some((q) => clashes(p, q))) throw new PortInUseError(p.publishedPort, p.protocol, o.value.spec.name);
		}
	}
}
