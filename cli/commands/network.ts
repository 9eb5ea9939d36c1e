import type { Command } from "commander";
import { UsageError } from "../errors.ts";
import type { ListFlags } from "../format.ts";
import type { CreateOptions } from "../network/commands.ts";
import { collect, dataRoot, listOptions } from "./options.ts";

export function registerNetwork(program: Command): void {
	const network = program.command("network").description("manage overlay networks (run on a manager)");
	network
		.command("create")
		.description("create an overlay network")
		.argument("<name>")
		.option("-d, --driver <driver>", "network driver", "overlay")
		.option("--subnet <cidr>", "subnet, e.g. 198.19.5.0/24 (default: the next free one from the address pools)")
		.option("--gateway <ip>", "gateway address in the subnet (default: its first address)")
		.option("--attachable", "standalone containers may attach to it")
		.option("--internal", "no way out of the network")
		.option("--ingress", "make it the routing mesh's network")
		.option("-o, --opt <key=value>", "driver option (encrypted, mtu); repeatable", collect, [])
		.option("-l, --label <key=value>", "label; repeatable", collect, [])
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (name: string, o: CreateFlags) => {
			const { networkCreate } = await import("../network/commands.ts");
			await networkCreate(name, { ...o, opt: keyValues(o.opt, "--opt"), label: keyValues(o.label, "--label") });
		});
	listOptions(network.command("ls").alias("list").description("list networks"), [
		"id",
		"name",
		"driver",
		"scope",
		"label",
	])
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: ListFlags & { dataRoot: string }) => {
			const { networkLs } = await import("../network/commands.ts");
			await networkLs(o);
		});
	network
		.command("inspect")
		.description("show networks as JSON")
		.argument("<network...>", "name, id or unique id prefix")
		.option("--format <format>", "json (default) or a Go template, e.g. '{{.IPAM.Config}}'")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (refs: string[], o: { format?: string; dataRoot: string }) => {
			const { networkInspect } = await import("../network/commands.ts");
			await networkInspect(refs, o);
		});
	network
		.command("rm")
		.alias("remove")
		.description("remove networks")
		.argument("<network...>", "name, id or unique id prefix")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (refs: string[], o: { dataRoot: string }) => {
			const { networkRm } = await import("../network/commands.ts");
			await networkRm(refs, o);
		});
}

type CreateFlags = Omit<CreateOptions, "opt" | "label"> & { opt: string[]; label: string[] };

function keyValues(list: string[], flag: string): Record<string, string> {
	const out: Record<string, string> = {};
	for (const kv of list) {
		const m = /^([^=]+)(?:=(.*))?$/.exec(kv);
		if (!m) throw new UsageError(`${flag} ${JSON.stringify(kv)}: use key=value`);
		out[m[1]!] = m[2] ?? "";
	}
	return out;
}
