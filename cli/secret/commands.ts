// tsswarm secret ... and tsswarm config ...: docker's commands (create NAME FILE|-, ls, inspect,
// rm) plus `update` (a new data version that rolls the services using it). Data is read here and
// sent base64 to the local agent, which forwards it to the leader; it is never printed.
import { readFileSync } from "node:fs";
import type { ConfigInspect, SecretInspect } from "../../agent/api/types.ts";
import { client } from "../api.ts";
import { CommandError, UsageError } from "../errors.ts";
import { inspectPrinter, type ListFlags, type ListSpec, labelFilter, listPrinter } from "../format.ts";

export type Kind = "secret" | "config";
type Item = SecretInspect | ConfigInspect;

const MAX_DATA = 500 * 1024;

/**
 * FILE, or - for standard input (read as a stream: a pipe may not have it all at once). Data over
 * Swarm's 500 KB is refused here too, so it is not sent at all (the agent refuses it the same way).
 */
export async function readData(file: string, kind: Kind): Promise<string> {
	let data: Buffer;
	try {
		if (file !== "-") data = readFileSync(file);
		else {
			const chunks: Buffer[] = [];
			for await (const c of process.stdin) chunks.push(c as Buffer);
			data = Buffer.concat(chunks);
		}
	} catch (err) {
		throw new UsageError(`${kind} data ${file === "-" ? "from standard input" : file}: ${(err as Error).message}`);
	}
	if (data.length > MAX_DATA)
		throw new CommandError(
			`invalid ${kind}: data is ${(data.length / 1024).toFixed(1)} KB (${data.length} bytes): at most 500 KB (${MAX_DATA} bytes), as in Swarm`,
			kind === "secret" ? "ERR_INVALID_SECRET" : "ERR_INVALID_CONFIG",
		);
	return data.toString("base64");
}

export async function fileCreate(
	kind: Kind,
	name: string,
	file: string,
	o: { label: Record<string, string>; dataRoot: string },
): Promise<void> {
	const body = { name, data: await readData(file, kind), labels: o.label };
	const r =
		kind === "secret"
			? await client(o).call("POST /v1/secrets/create", { body })
			: await client(o).call("POST /v1/configs/create", { body });
	process.stdout.write(`${r.ID}\n`);
}

export async function fileUpdate(
	kind: Kind,
	ref: string,
	file: string | undefined,
	o: { label?: Record<string, string>; dataRoot: string },
): Promise<void> {
	if (file === undefined && o.label === undefined)
		throw new UsageError(`nothing to update: give a FILE (or -) or --label`);
	const body = {
		ref,
		...(file !== undefined ? { data: await readData(file, kind) } : {}),
		...(o.label !== undefined ? { labels: o.label } : {}),
	};
	const r =
		kind === "secret"
			? await client(o).call("POST /v1/secrets/update", { body })
			: await client(o).call("POST /v1/configs/update", { body });
	process.stdout.write(`${r.ID}\n`);
	if (r.Services.length) process.stderr.write(`version ${r.DataVersion}: rolling ${r.Services.join(", ")}\n`);
}

/** secret ls / config ls: docker's columns and filters, plus the data version. */
export const FILE_LS: ListSpec<Item> = {
	fields: {
		ID: (x) => x.ID,
		Name: (x) => x.Spec.Name,
		Labels: (x) => x.Spec.Labels,
		CreatedAt: (x) => x.CreatedAt,
		UpdatedAt: (x) => x.UpdatedAt,
		DataVersion: (x) => x.DataVersion,
		DataSize: (x) => x.DataSize,
	},
	ids: { ID: 25 },
	columns: [
		{ header: "ID", field: "ID" },
		{ header: "NAME", field: "Name" },
		{ header: "VERSION", field: "DataVersion" },
		{ header: "CREATED", field: "CreatedAt" },
		{ header: "UPDATED", field: "UpdatedAt" },
	],
	quiet: "ID",
	filters: {
		id: (x, v) => x.ID.startsWith(v),
		name: (x, v) => x.Spec.Name.startsWith(v),
		label: (x, v) => labelFilter(x.Spec.Labels, v),
	},
};

export async function fileLs(kind: Kind, o: ListFlags & { dataRoot: string }): Promise<void> {
	const print = listPrinter(FILE_LS, o);
	const items: Item[] =
		kind === "secret" ? await client(o).call("GET /v1/secrets") : await client(o).call("GET /v1/configs");
	print(items.sort((a, b) => a.Spec.Name.localeCompare(b.Spec.Name)));
}

export async function fileInspect(kind: Kind, refs: string[], o: { format?: string; dataRoot: string }): Promise<void> {
	const print = inspectPrinter(o.format);
	const api = client(o);
	const out: Item[] = [];
	for (const ref of refs)
		out.push(
			kind === "secret"
				? await api.call("POST /v1/secrets/inspect", { body: { ref } })
				: await api.call("POST /v1/configs/inspect", { body: { ref } }),
		);
	print(out);
}

export async function fileRm(kind: Kind, refs: string[], o: { dataRoot: string }): Promise<void> {
	// Like docker: remove what can be removed, report each failure, fail if any did.
	const api = client(o);
	let failed: Error | undefined;
	for (const ref of refs) {
		try {
			if (kind === "secret") await api.call("POST /v1/secrets/rm", { body: { ref } });
			else await api.call("POST /v1/configs/rm", { body: { ref } });
			process.stdout.write(`${ref}\n`);
		} catch (err) {
			failed = err as Error;
			if (refs.length > 1) process.stderr.write(`tsswarm: ${ref}: ${(err as Error).message}\n`);
		}
	}
	if (failed) throw failed;
}
