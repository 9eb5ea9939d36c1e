import type { Command } from "commander";
import { UsageError } from "../errors.ts";
import type { ListFlags } from "../format.ts";
import { collect, dataRoot, listOptions } from "./options.ts";

function labels(list: string[]): Record<string, string> {
	const out: Record<string, string> = {};
	for (const kv of list) {
		const i = kv.indexOf("=");
		if (i === 0) throw new UsageError(`--label ${JSON.stringify(kv)}: use key=value`);
		if (i < 0) out[kv] = "";
		else out[kv.slice(0, i)] = kv.slice(i + 1);
	}
	return out;
}

/** `tsswarm secret ...` and `tsswarm config ...` (the same commands). */
function registerKind(program: Command, kind: "secret" | "config"): void {
	const what = kind === "secret" ? "secrets (encrypted in the store, on tmpfs in tasks)" : "configs";
	const cmd = program.command(kind).description(`manage ${what} (run on a manager)`);
	cmd
		.command("create")
		.description(`create a ${kind} from a file or standard input (-); at most 500 KB`)
		.argument("<name>")
		.argument("<file>", "a file, or - for standard input")
		.option("-l, --label <key=value>", "label (repeatable)", collect, [])
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (name: string, file: string, o: { label: string[]; dataRoot: string }) => {
			const { fileCreate } = await import("../secret/commands.ts");
			await fileCreate(kind, name, file, { ...o, label: labels(o.label) });
		});
	cmd
		.command("update")
		.description(`store a new version of a ${kind} (rolls the services using it) and/or replace its labels`)
		.argument(`<${kind}>`, "name, id or unique id prefix")
		.argument("[file]", "a file, or - for standard input")
		.option("-l, --label <key=value>", "labels (repeatable; replace the current ones)", collect)
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (ref: string, file: string | undefined, o: { label?: string[]; dataRoot: string }) => {
			const { fileUpdate } = await import("../secret/commands.ts");
			await fileUpdate(kind, ref, file, { dataRoot: o.dataRoot, ...(o.label ? { label: labels(o.label) } : {}) });
		});
	listOptions(cmd.command("ls").alias("list").description(`list ${kind}s`), ["id", "name", "label"])
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: ListFlags & { dataRoot: string }) => {
			const { fileLs } = await import("../secret/commands.ts");
			await fileLs(kind, o);
		});
	cmd
		.command("inspect")
		.description(`show ${kind}s as JSON${kind === "secret" ? " (never their data)" : ""}`)
		.argument(`<${kind}...>`, "name, id or unique id prefix")
		.option("--format <format>", "json (default) or a Go template, e.g. '{{.Spec.Name}}'")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (refs: string[], o: { format?: string; dataRoot: string }) => {
			const { fileInspect } = await import("../secret/commands.ts");
			await fileInspect(kind, refs, o);
		});
	cmd
		.command("rm")
		.alias("remove")
		.description(`remove ${kind}s (refused while a service uses one)`)
		.argument(`<${kind}...>`, "name, id or unique id prefix")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (refs: string[], o: { dataRoot: string }) => {
			const { fileRm } = await import("../secret/commands.ts");
			await fileRm(kind, refs, o);
		});
}

export function registerSecret(program: Command): void {
	registerKind(program, "secret");
	registerKind(program, "config");
}
