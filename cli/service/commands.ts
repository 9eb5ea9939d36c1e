// tsswarm service ...: talks to the local agent (a manager), which forwards writes to the leader.
// create and scale show convergence as docker does unless --detach.
import type { ServiceRow, ServiceRecord as StoredService, TaskRow } from "../../agent/api/index.ts";
import { call } from "../../agent/api/index.ts";
import { parseReference, RegistryClient } from "../../runtime/index.ts";
import { CommandError } from "../errors.ts";
import { type ListFlags, type ListSpec, listPrinter } from "../format.ts";
import { type CreateFlags, specFromFlags } from "./flags.ts";
import { type PolicyFlags, policyFromFlags } from "./update-flags.ts";

const insecure = () => (process.env.TSSWARM_INSECURE_REGISTRIES ?? "").split(",").filter(Boolean);

/**
 * Pin the image as docker does: name:tag@digest, and the platforms its index lists (so the
 * scheduler places it only where it runs). A registry that cannot be reached is a warning.
 */
export async function resolveImage(
	image: string,
): Promise<{ image: string; platforms: Array<Record<string, string>> }> {
	try {
		const ref = parseReference(image);
		if (ref.digest) return { image, platforms: [] };
		const m = await new RegistryClient({ insecureRegistries: insecure() }).manifest(
			ref,
			ref.tag ?? "latest",
			AbortSignal.timeout(10_000),
		);
		const list = Array.isArray(m.json.manifests)
			? (m.json.manifests as Array<{ platform?: Record<string, string> }>)
			: [];
		const platforms = list
			.map((x) => x.platform)
			.filter((p): p is Record<string, string> => !!p?.os && !!p.architecture && p.os !== "unknown")
			.map((p) => ({ os: p.os!, architecture: p.architecture!, ...(p.variant ? { variant: p.variant } : {}) }));
		return { image: `${image}@${m.digest}`, platforms };
	} catch (err) {
		process.stderr.write(
			`image ${image} could not be accessed on a registry to record its digest (${(err as Error).message}); each node will resolve it itself\n`,
		);
		return { image, platforms: [] };
	}
}

export async function serviceCreate(
	image: string,
	args: string[],
	f: CreateFlags & PolicyFlags & { detach?: boolean; quiet?: boolean; dataRoot: string },
): Promise<void> {
	// `create IMAGE -- sh -c ...`: the "--" ends our options (flags after the image pass through anyway).
	if (args[0] === "--") args = args.slice(1);
	const spec = specFromFlags(image, args, f);
	spec.update = policyFromFlags(f, "update");
	spec.rollback = policyFromFlags(f, "rollback");
	const resolved = await resolveImage(image);
	const task = spec.task as { container: { image: string }; placement: Record<string, unknown> };
	task.container.image = resolved.image;
	if (resolved.platforms.length) task.placement.platforms = resolved.platforms;
	const s = await call<StoredService>(f.dataRoot, "POST", "/v1/services/create", { spec });
	process.stdout.write(`${s.id}\n`);
	if (!f.detach) await converge(f.dataRoot, s.id, Boolean(f.quiet));
}

const STAGES = ["new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running"];

export function bar(state: string): string {
	const i = STAGES.indexOf(state);
	const width = 50;
	const done = i < 0 ? 0 : Math.round(((i + 1) / STAGES.length) * width);
	return `[${"=".repeat(Math.max(0, done - 1))}${done >= width ? "=" : ">"}${" ".repeat(width - done)}]`;
}

/** Wait until every wanted task of the current spec runs (jobs: completed); print progress like docker. */
export async function converge(dataRoot: string, id: string, quiet: boolean, timeoutMs = 300_000): Promise<void> {
	const tty = process.stdout.isTTY && !quiet;
	const deadline = Date.now() + timeoutMs;
	let lastText = "";
	let stableSince = 0;
	for (;;) {
		const svc = await call<StoredService>(dataRoot, "POST", "/v1/services/inspect", { ref: id });
		const rows = await call<TaskRow[]>(dataRoot, "POST", "/v1/services/ps", { ref: id });
		const mode = svc.value.spec.mode;
		const live = rows.filter((r) => r.desiredState === "running" || r.desiredState === "ready");
		const job = mode.kind.endsWith("job");
		const want =
			mode.kind === "replicated"
				? (mode.replicas ?? 0)
				: mode.kind === "replicated-job"
					? (mode.totalCompletions ?? 0)
					: live.length;
		const done = job
			? rows.filter((r) => r.state === "complete").length
			: live.filter((r) => r.state === "running").length;
		const lines = [`overall progress: ${done} out of ${want} tasks`];
		for (const r of live.slice(0, 50)) {
			const label = r.slot !== undefined ? `${r.slot}/${want}` : r.node || r.nodeId?.slice(0, 12) || "?";
			lines.push(`${label}: ${r.state.padEnd(9)} ${r.error ? r.error : bar(r.state)}`);
		}
		// On a terminal the block is redrawn in place; in a log, a line each time the count moves
		// and the slots once at the end.
		const text = tty ? lines.join("\n") : lines[0]!;
		if (text !== lastText && !quiet) {
			if (tty && lastText) process.stdout.write(`\x1b[${lastText.split("\n").length}A\x1b[J`);
			process.stdout.write(`${text}\n`);
			lastText = text;
		}
		const slots = lines.slice(1).join("\n");
		if (done >= want) {
			stableSince ||= Date.now();
			if (job || Date.now() - stableSince >= 1000) {
				if (!quiet && !tty && slots) process.stdout.write(`${slots}\n`);
				if (!quiet) process.stdout.write("verify: Service converged\n");
				return;
			}
		} else stableSince = 0;
		if (Date.now() > deadline)
			throw new CommandError(
				`service ${id} did not converge within ${Math.round(timeoutMs / 1000)} s (tsswarm service ps ${id})`,
				"ERR_NOT_CONVERGED",
			);
		await new Promise((r) => setTimeout(r, 300));
	}
}

/** service ls: docker's columns and filters. */
export const SERVICE_LS: ListSpec<ServiceRow> = {
	fields: {
		ID: (r) => r.id,
		Name: (r) => r.name,
		Mode: (r) => r.mode,
		Replicas: (r) => `${r.running}/${r.desired}`,
		Image: (r) => r.image.replace(/@sha256:.*$/, ""),
		Ports: (r) => r.ports.join(", "),
	},
	ids: { ID: 12 },
	columns: [
		{ header: "ID", field: "ID" },
		{ header: "NAME", field: "Name" },
		{ header: "MODE", field: "Mode" },
		{ header: "REPLICAS", field: "Replicas" },
		{ header: "IMAGE", field: "Image" },
		{ header: "PORTS", field: "Ports" },
	],
	quiet: "ID",
	filters: {
		id: (r, v) => r.id.startsWith(v),
		name: (r, v) => r.name.startsWith(v),
		mode: (r, v) => r.mode === v,
	},
};

export async function serviceLs(o: ListFlags & { dataRoot: string }): Promise<void> {
	const print = listPrinter(SERVICE_LS, o);
	const rows = await call<ServiceRow[]>(o.dataRoot, "GET", "/v1/services");
	print(rows.sort((a, b) => a.name.localeCompare(b.name)));
}

const ago = (iso: string) => {
	const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
	return s < 60
		? `${s} seconds ago`
		: s < 3600
			? `${Math.round(s / 60)} minutes ago`
			: `${Math.round(s / 3600)} hours ago`;
};
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** service ps / node ps: docker's columns and filters; a slot's history is indented under it. */
export const TASK_PS: ListSpec<TaskRow & { shown: string }> = {
	fields: {
		ID: (r) => r.id,
		Name: (r) => r.shown,
		Image: (r) => r.image,
		Node: (r) => r.node,
		Platform: (r) => r.platform,
		DesiredState: (r) => cap(r.desiredState),
		CurrentState: (r) => `${cap(r.state)} ${ago(r.since)}`,
		Error: (r) => (r.error ? `"${r.error}"` : ""),
	},
	ids: { ID: 12 },
	columns: [
		{ header: "ID", field: "ID" },
		{ header: "NAME", field: "Name" },
		{ header: "IMAGE", field: "Image", value: (c) => String(c.Image).replace(/@sha256:.*$/, "") },
		{ header: "NODE", field: "Node" },
		{ header: "PLATFORM", field: "Platform" },
		{ header: "DESIRED STATE", field: "DesiredState" },
		{ header: "CURRENT STATE", field: "CurrentState" },
		{ header: "ERROR", field: "Error" },
	],
	quiet: "ID",
	filters: {
		"desired-state": (r, v) => r.desiredState === v,
		node: (r, v) => r.node === v || r.nodeId === v,
		id: (r, v) => r.id.startsWith(v),
		name: (r, v) => r.name.startsWith(v),
	},
	json: ({ shown: _, ...row }) => row,
};

export function printTasks(rows: TaskRow[], o: ListFlags): void {
	const print = listPrinter(TASK_PS, o);
	let prev = "";
	print(
		rows.map((r) => {
			const shown = r.name === prev ? ` \\_ ${r.name}` : r.name;
			prev = r.name;
			return { ...r, shown };
		}),
	);
}

export async function servicePs(refs: string[], o: ListFlags & { dataRoot: string }): Promise<void> {
	listPrinter(TASK_PS, o); // a bad --format or --filter fails before any request
	const rows: TaskRow[] = [];
	for (const ref of refs) rows.push(...(await call<TaskRow[]>(o.dataRoot, "POST", "/v1/services/ps", { ref })));
	printTasks(rows, o);
}

export async function serviceInspect(refs: string[], o: { pretty?: boolean; dataRoot: string }): Promise<void> {
	const out: StoredService[] = [];
	for (const ref of refs) out.push(await call<StoredService>(o.dataRoot, "POST", "/v1/services/inspect", { ref }));
	if (!o.pretty) return void process.stdout.write(`${JSON.stringify(out, null, 4)}\n`);
	for (const s of out) {
		const sp = s.value.spec as unknown as Record<string, unknown> & { task: { container: Record<string, unknown> } };
		process.stdout.write(
			`ID:\t\t${s.id}\nName:\t\t${s.value.spec.name}\nMode:\t\t${JSON.stringify(s.value.spec.mode)}\nImage:\t\t${String(sp.task.container.image)}\nSpec version:\t${s.value.specVersion}\n`,
		);
		const t = s.value.spec.task;
		for (const r of t.secrets ?? [])
			process.stdout.write(
				`Secret:		${r.secretName} (v${r.version}) -> ${r.target.startsWith("/") ? r.target : `/run/secrets/${r.target}`} ${r.uid}:${r.gid} ${r.mode.toString(8).padStart(4, "0")}
`,
			);
		for (const r of t.configs ?? [])
			process.stdout.write(
				`Config:		${r.configName} (v${r.version}) -> ${r.target} ${r.uid}:${r.gid} ${r.mode.toString(8).padStart(4, "0")}
`,
			);
		const u = s.value.updateStatus;
		if (u)
			process.stdout.write(
				`UpdateStatus:\n State:\t\t${u.state}\n${u.startedAt ? ` Started:\t${u.startedAt}\n` : ""}${u.completedAt ? ` Completed:\t${u.completedAt}\n` : ""} Message:\t${u.message ?? ""}\n`,
			);
		process.stdout.write("\n");
	}
}

export async function serviceScale(pairs: string[], o: { detach?: boolean; dataRoot: string }): Promise<void> {
	for (const p of pairs) {
		const m = /^([^=]+)=(\d+)$/.exec(p);
		if (!m) throw new CommandError(`invalid scale "${p}": use SERVICE=REPLICAS`, "ERR_USAGE");
		const r = await call<ServiceRow>(o.dataRoot, "POST", "/v1/services/scale", { ref: m[1], replicas: Number(m[2]) });
		process.stdout.write(`${r.name} scaled to ${m[2]}\n`);
		if (!o.detach) await converge(o.dataRoot, r.id, false);
	}
}

export async function serviceRm(refs: string[], o: { dataRoot: string }): Promise<void> {
	let failed = 0;
	for (const ref of refs) {
		try {
			await call(o.dataRoot, "POST", "/v1/services/rm", { ref });
			process.stdout.write(`${ref}\n`);
		} catch (err) {
			failed++;
			process.stderr.write(`${(err as Error).message}\n`);
		}
	}
	if (failed) throw new CommandError(`${failed} of ${refs.length} services could not be removed`);
}
