// The local API's routes, against AgentApi: the few things the agent does for its CLI. The route
// table lives here, apart from the composition root (agent.ts), so routes grow without touching it.

import { parseCidr } from "../../overlay-net/ipam/index.ts";
import { UsageError } from "../errors.ts";
import type { InitOptions, Manager } from "../manager/index.ts";
import type { Route } from "./server.ts";

/** What the routes need of an agent (Agent implements it). */
export interface AgentApi {
	info(): unknown;
	init(o: InitOptions): Promise<unknown>;
	join(token: string, addr: string): Promise<unknown>;
	joinToken(role: "manager" | "worker", rotate: boolean): unknown;
	nodes(): unknown;
	removeNode(id: string, force: boolean): Promise<unknown>;
	leave(force: boolean): Promise<unknown>;
	/** This node's manager; throws NotInClusterError / NotManagerError elsewhere. */
	managerOnly(): Pick<
		Manager,
		| "listNetworks"
		| "createNetwork"
		| "inspectNetwork"
		| "removeNetwork"
		| "createService"
		| "listServices"
		| "inspectService"
		| "serviceTasks"
		| "scaleService"
		| "removeService"
		| "nodeTasks"
		| "inspectNodes"
		| "updateNode"
		| "serviceLogs"
	>;
}

export function agentRoutes(a: AgentApi): Record<string, Route> {
	return {
		"GET /v1/info": () => a.info(),
		"POST /v1/init": (b) => a.init(initOptions(b)),
		"POST /v1/join": (b) => a.join(String(b.token ?? ""), String(b.addr ?? "")),
		"POST /v1/join-token": (b) => a.joinToken(b.role === "manager" ? "manager" : "worker", Boolean(b.rotate)),
		"GET /v1/nodes": () => a.nodes(),
		"POST /v1/nodes/rm": (b) => a.removeNode(String(b.id ?? ""), Boolean(b.force)),
		"POST /v1/leave": (b) => a.leave(Boolean(b.force)),
		"GET /v1/networks": () => a.managerOnly().listNetworks(),
		"POST /v1/networks/create": (b) => a.managerOnly().createNetwork(b),
		"POST /v1/networks/inspect": (b) => a.managerOnly().inspectNetwork(String(b.ref ?? "")),
		"POST /v1/networks/rm": (b) => a.managerOnly().removeNetwork(String(b.ref ?? "")),
		"POST /v1/services/create": (b) => a.managerOnly().createService(b.spec),
		"GET /v1/services": () => a.managerOnly().listServices(),
		"POST /v1/services/inspect": (b) => a.managerOnly().inspectService(String(b.ref ?? "")),
		"POST /v1/services/ps": (b) => a.managerOnly().serviceTasks(String(b.ref ?? "")),
		"POST /v1/services/scale": (b) => a.managerOnly().scaleService(String(b.ref ?? ""), b.replicas),
		"POST /v1/services/rm": (b) => a.managerOnly().removeService(String(b.ref ?? "")),
		"POST /v1/nodes/ps": (b) => a.managerOnly().nodeTasks(String(b.ref ?? b.id ?? "")),
		"POST /v1/nodes/inspect": (b) => a.managerOnly().inspectNodes(Array.isArray(b.refs) ? b.refs.map(String) : []),
		"POST /v1/nodes/update": (b) => a.managerOnly().updateNode(String(b.ref ?? ""), b.update),
		"POST /v1/services/logs": (b, { signal }) => a.managerOnly().serviceLogs(b, signal),
	};
}

/** tsswarm init's address pools: where networks without --subnet get theirs. */
function initOptions(b: Record<string, unknown>): InitOptions {
	const pools = Array.isArray(b.addrPools) && b.addrPools.length > 0 ? b.addrPools.map(String) : ["10.0.0.0/8"];
	const subnetSize = b.subnetSize === undefined ? 24 : Number(b.subnetSize);
	for (const p of pools) {
		const c = parseCidr(p);
		if (c.prefix > subnetSize) throw new UsageError(`address pool ${p} is smaller than one /${subnetSize} subnet`);
	}
	if (!Number.isInteger(subnetSize) || subnetSize < 8 || subnetSize > 29)
		throw new UsageError(`--default-addr-pool-mask-length must be 8 to 29, got ${String(b.subnetSize)}`);
	return { addrPools: pools.map((p) => parseCidr(p).text), subnetSize };
}
