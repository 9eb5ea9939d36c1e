// tsswarm network ...: talks to the local agent, which forwards writes to the Raft leader.
import type { NetworkInspect as Network } from "../../agent/api/types.ts";
import { client } from "../api.ts";
import { inspectPrinter, type ListFlags, type ListSpec, labelFilter, listPrinter } from "../format.ts";

export interface CreateOptions {
	driver: string;
	subnet?: string;
	gateway?: string;
	attachable?: boolean;
	internal?: boolean;
	ingress?: boolean;
	opt: Record<string, string>;
	label: Record<string, string>;
	dataRoot: string;
}

export async function networkCreate(name: string, o: CreateOptions): Promise<void> {
	const n = await client(o).call("POST /v1/networks", {
		body: {
			name,
			driver: o.driver,
			subnet: o.subnet,
			gateway: o.gateway,
			attachable: o.attachable ?? false,
			internal: o.internal ?? false,
			ingress: o.ingress ?? false,
			options: o.opt,
			labels: o.label,
		},
	});
	process.stdout.write(`${n.Id}\n`);
}

/** network ls: docker's columns (and the subnet) and filters. */
export const NETWORK_LS: ListSpec<Network> = {
	fields: {
		ID: (n) => n.Id,
		Name: (n) => n.Name,
		Driver: (n) => n.Driver,
		Scope: (n) => n.Scope,
		Subnet: (n) => n.IPAM.Config[0]?.Subnet ?? "",
		Gateway: (n) => n.IPAM.Config[0]?.Gateway ?? "",
		Internal: (n) => n.Internal,
		Attachable: (n) => n.Attachable,
		Ingress: (n) => n.Ingress,
		IPv6: (n) => n.EnableIPv6,
		CreatedAt: (n) => n.Created,
		Labels: (n) => n.Labels,
	},
	ids: { ID: 12 },
	columns: [
		{ header: "NETWORK ID", field: "ID" },
		{ header: "NAME", field: "Name" },
		{ header: "DRIVER", field: "Driver" },
		{ header: "SCOPE", field: "Scope" },
		{ header: "SUBNET", field: "Subnet" },
	],
	quiet: "ID",
	filters: {
		id: (n, v) => n.Id.startsWith(v),
		name: (n, v) => n.Name.includes(v),
		driver: (n, v) => n.Driver === v,
		scope: (n, v) => n.Scope === v,
		label: (n, v) => labelFilter(n.Labels, v),
	},
};

export async function networkLs(o: ListFlags & { dataRoot: string }): Promise<void> {
	const print = listPrinter(NETWORK_LS, o);
	print((await client(o).call("GET /v1/networks")).sort((a, b) => a.Name.localeCompare(b.Name)));
}

export async function networkInspect(refs: string[], o: { format?: string; dataRoot: string }): Promise<void> {
	const print = inspectPrinter(o.format);
	const api = client(o);
	const out: Network[] = [];
	for (const ref of refs) out.push(await api.call("GET /v1/networks/:ref", { params: { ref } }));
	print(out);
}

export async function networkRm(refs: string[], o: { dataRoot: string }): Promise<void> {
	// Like docker: remove what can be removed, report each failure, fail if any did.
	const api = client(o);
	let failed: Error | undefined;
	for (const ref of refs) {
		try {
			await api.call("DELETE /v1/networks/:ref", { params: { ref } });
			process.stdout.write(`${ref}\n`);
		} catch (err) {
			failed = err as Error;
			if (refs.length > 1) process.stderr.write(`tsswarm: ${ref}: ${(err as Error).message}\n`);
		}
	}
	if (failed) throw failed;
}
