import type { Command } from "commander";
import type { ListFlags } from "../format.ts";
import { collect, dataRoot, listOptions } from "./options.ts";

export function registerImage(program: Command): void {
	const image = program.command("image").description("manage images (pull from registries, import archives)");
	image
		.command("pull")
		.description("pull an image for this machine's platform (or --platform) from its registry")
		.argument("<ref>", "image reference, e.g. 198.18.0.254:5000/busybox:latest")
		.option("--platform <os/arch[/variant]>", "platform to pull, e.g. linux/arm64")
		.option("--insecure-registry <host:port>", "a registry reached over plain http (repeatable)", collect)
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (ref: string, o: { platform?: string; insecureRegistry?: string[]; dataRoot: string }) => {
			const { imagePull } = await import("../runtime/commands.ts");
			await imagePull(ref, o);
		});
	listOptions(image.command("ls").alias("list").description("list images"), ["reference", "dangling"])
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: ListFlags & { dataRoot: string }) => {
			const { imageLs } = await import("../runtime/commands.ts");
			imageLs(o);
		});
	image
		.command("inspect")
		.description("show images as JSON (id, tags, digests, platform, config, layers, size)")
		.argument("<ref...>", "image reference or id")
		.option("--platform <os/arch[/variant]>", "which platform of the reference")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (refs: string[], o: { platform?: string; dataRoot: string }) => {
			const { imageInspect } = await import("../runtime/commands.ts");
			imageInspect(refs, o);
		});
	image
		.command("load")
		.description("import an OCI layout (directory or .tar) or a docker save archive")
		.argument("<path>")
		.option("--platform <os/arch[/variant]>", "platform to import from a multi-platform archive")
		.option("--name <repository>", "repository for images the archive names only by a tag (OCI ref.name)")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (path: string, o: { platform?: string; name?: string; dataRoot: string }) => {
			const { imageLoad } = await import("../runtime/commands.ts");
			await imageLoad(path, o);
		});
	image
		.command("rm")
		.description("remove image references (refused while a container uses the image, unless -f)")
		.argument("<ref...>")
		.option("-f, --force", "untag even if containers use it (their layers stay until they are removed)")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (refs: string[], o: { force?: boolean; dataRoot: string }) => {
			const { imageRm } = await import("../runtime/commands.ts");
			imageRm(refs, o);
		});
	image
		.command("prune")
		.description("delete blobs and layers no image or container uses")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: { dataRoot: string }) => {
			const { imagePrune } = await import("../runtime/commands.ts");
			imagePrune(o);
		});
}
