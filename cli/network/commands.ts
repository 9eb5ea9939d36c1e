// tsswarm network ...: talks to the local agent, which forwards writes to the Raft leader.
import { call, type NetworkInspect as Network } from "../../agent/api/index.ts";
import { printTable } from "../table.ts";

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
	const n = await call<Network>(o.dataRoot, "POST", "/v1/networks/create", {
		name,
		driver: o.driver,
		subnet: o.subnet,
		gateway: o.gateway,
		attachable: o.attachable ?? false,
		internal: o.internal ?? false,
		ingress: o.ingress ?? false,
		options: o.opt,
		labels: o.label,
	});
	process.stdout.write(`${n.Id}\n`);
}

export async function networkLs(o: { quiet?: boolean; format: string; dataRoot: string }): Promise<void> {
	const nets = (await call<Network[]>(o.dataRoot, "GET", "/v1/networks")).sort((a, b) => a.Name.localeCompare(b.Name));
	if (o.format === "json") {
		process.stdout.write(`${JSON.stringify(nets)}\n`);
		return;
	}
	if (o.quiet) {
		for (const n of nets) process.stdout.write(`${n.Id.slice(0, 12)}\n`);
		return;
	}
	const rows = [["NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET"]];
	for (const n of nets) rows.push([n.Id.slice(0, 12), n.Name, n.Driver, n.Scope, n.IPAM.Config[0]?.Subnet ?? ""]);
	printTable(rows);
}

export async function networkInspect(refs: string[], o: { dataRoot: string }): Promise<void> {
	const out: unknown[] = [];
	for (const ref of refs) out.push(await call(o.dataRoot, "POST", "/v1/networks/inspect", { ref }));
	process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
}

export async function networkRm(refs: string[], o: { dataRoot: string }): Promise<void> {
	// Like docker: remove what can be removed, report each failure, fail if any did.
	let failed: Error | undefined;
	for (const ref of refs) {
		try {
			await call(o.dataRoot, "POST", "/v1/networks/rm", { ref });
			process.stdout.write(`${ref}\n`);
		} catch (err) {
			failed = err as Error;
			if (refs.length > 1) process.stderr.write(`tsswarm: ${ref}: ${(err as Error).message}\n`);
		}
	}
	if (failed) throw failed;
}
