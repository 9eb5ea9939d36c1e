import type { Command } from "commander";
import type { ListFlags } from "../format.ts";
import type { DeployFlags } from "../stack/index.ts";
import { collect, dataRoot, listOptions } from "./options.ts";

export function registerStack(program: Command): void {
	const stack = program
		.command("stack")
		.description("manage stacks: compose files deployed as services (on a manager)");
	stack
		.command("deploy")
		.alias("up")
		.description("deploy a new stack or update an existing one")
		.argument("<stack>")
		.option(
			"-c, --compose-file <file>",
			"path to a compose file, or - for stdin (repeatable: later files override)",
			collect,
			[],
		)
		.option("--prune", "remove services that are no longer in the files")
		.option("--resolve-image <when>", "pin image digests: always, changed or never", "always")
		.option("--with-registry-auth", "accepted for docker's scripts: nodes pull with their own registry settings")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (name: string, o: DeployFlags) => {
			const { stackDeploy } = await import("../stack/index.ts");
			await stackDeploy(name, o);
		});
	listOptions(stack.command("ls").alias("list").description("list stacks"))
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: ListFlags & { dataRoot: string }) => {
			const { stackLs } = await import("../stack/index.ts");
			await stackLs(o);
		});
	listOptions(stack.command("ps").description("list the tasks of a stack").argument("<stack>"), [
		"desired-state",
		"node",
		"id",
		"name",
	])
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (name: string, o: ListFlags & { dataRoot: string }) => {
			const { stackPs } = await import("../stack/index.ts");
			await stackPs(name, o);
		});
	listOptions(stack.command("services").description("list the services of a stack").argument("<stack>"), [
		"id",
		"name",
		"mode",
	])
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (name: string, o: ListFlags & { dataRoot: string }) => {
			const { stackServicesCmd } = await import("../stack/index.ts");
			await stackServicesCmd(name, o);
		});
	stack
		.command("rm")
		.alias("remove")
		.alias("down")
		.description("remove stacks: their services, networks, secrets and configs")
		.argument("<stack...>")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (names: string[], o: { dataRoot: string }) => {
			const { stackRm } = await import("../stack/index.ts");
			await stackRm(names, o);
		});
}
