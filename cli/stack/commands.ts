// tsswarm stack deploy/ls/ps/services/rm: docker's commands and output. deploy reads and checks
// the compose files here, then deploy.ts talks to the agent (a manager) through the local API.
import { readFileSync } from "node:fs";
import { CommandError, UsageError } from "../errors.ts";
import { type ListFlags, type ListSpec, listPrinter } from "../format.ts";
import { printTasks, resolveImage, SERVICE_LS, TASK_PS } from "../service/commands.ts";
import { stackApi } from "./api.ts";
import { loadCompose } from "./compose/load.ts";
import { checkStackName, NAMESPACE_LABEL, planStack } from "./convert.ts";
import { deployStack, type ResolveMode, removeStack, stackServices } from "./deploy.ts";
import { ComposeError } from "./errors.ts";
import { planObjects } from "./objects.ts";

export interface DeployFlags {
	composeFile: string[];
	prune?: boolean;
	resolveImage: string;
	withRegistryAuth?: boolean;
	dataRoot: string;
}

const MODES = ["always", "changed", "never"] as const;

export async function stackDeploy(stack: string, f: DeployFlags): Promise<void> {
	if (!(MODES as readonly string[]).includes(f.resolveImage))
		throw new UsageError(`invalid --resolve-image "${f.resolveImage}": use always, changed or never`);
	checkStackName(stack);
	try {
		const loaded = loadCompose({ files: f.composeFile });
		for (const w of loaded.warnings) process.stderr.write(`${w}\n`);
		const plan = planStack(stack, loaded, (p) => readFileSync(p, "utf8"));
		const objects = planObjects(stack, loaded, (p) => readFileSync(p));
		for (const n of plan.notices) process.stderr.write(`Ignoring ${n}\n`);
		if (f.withRegistryAuth)
			process.stderr.write("--with-registry-auth: each node pulls with its own registry settings (nothing is sent)\n");
		await deployStack(stackApi(f), plan, objects, {
			prune: Boolean(f.prune),
			resolveImage: f.resolveImage as ResolveMode,
			resolve: resolveImage,
		});
	} catch (err) {
		// docker's multi-line refusals (unsupported options) are printed whole; main prints one line.
		if (err instanceof ComposeError && err.message.includes("\n")) {
			process.stderr.write(`tsswarm: ${err.message.trimEnd()}\n`);
			process.exitCode = 1;
			return;
		}
		throw err;
	}
}

interface StackRow {
	name: string;
	services: number;
}

const STACK_LS: ListSpec<StackRow> = {
	fields: { Name: (r) => r.name, Services: (r) => r.services },
	columns: [
		{ header: "NAME", field: "Name" },
		{ header: "SERVICES", field: "Services" },
	],
	quiet: "Name",
};

export async function stackLs(o: ListFlags & { dataRoot: string }): Promise<void> {
	const print = listPrinter(STACK_LS, o);
	const api = stackApi(o);
	const counts = new Map<string, number>();
	for (const r of await api.services()) {
		const ns = (await api.inspect(r.id)).value.spec.labels[NAMESPACE_LABEL];
		if (ns) counts.set(ns, (counts.get(ns) ?? 0) + 1);
	}
	print([...counts].map(([name, services]) => ({ name, services })).sort((a, b) => a.name.localeCompare(b.name)));
}

async function servicesOf(stack: string, o: { dataRoot: string }) {
	checkStackName(stack);
	const api = stackApi(o);
	const list = await stackServices(api, stack);
	if (list.length === 0) throw new CommandError(`nothing found in stack: ${stack}`, "ERR_STACK_NOT_FOUND");
	return { api, list };
}

export async function stackServicesCmd(stack: string, o: ListFlags & { dataRoot: string }): Promise<void> {
	const print = listPrinter(SERVICE_LS, o);
	const { api, list } = await servicesOf(stack, o);
	const ids = new Set(list.map((s) => s.id));
	print((await api.services()).filter((r) => ids.has(r.id)).sort((a, b) => a.name.localeCompare(b.name)));
}

export async function stackPs(stack: string, o: ListFlags & { dataRoot: string }): Promise<void> {
	listPrinter(TASK_PS, o); // a bad --format or --filter fails before any request
	const { api, list } = await servicesOf(stack, o);
	const rows = [];
	for (const s of list.sort((a, b) => a.value.spec.name.localeCompare(b.value.spec.name)))
		rows.push(...(await api.tasks(s.id)));
	printTasks(rows, o);
}

export async function stackRm(stacks: string[], o: { dataRoot: string }): Promise<void> {
	const api = stackApi(o);
	let missing = 0;
	for (const stack of stacks) {
		checkStackName(stack);
		const n = await removeStack(api, stack, (l) => process.stdout.write(`${l}\n`));
		if (n === 0) {
			process.stderr.write(`Nothing found in stack: ${stack}\n`);
			missing++;
		}
	}
	if (missing === stacks.length)
		throw new CommandError(`nothing found in stack: ${stacks.join(", ")}`, "ERR_STACK_NOT_FOUND");
}
