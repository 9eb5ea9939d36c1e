import type { Command } from "commander";
import { UsageError } from "../errors.ts";
import type { ListFlags } from "../format.ts";
import { collect, dataRoot, listOptions } from "./options.ts";

export interface LogsFlags {
	follow?: boolean;
	since?: string;
	until?: string;
	tail?: string;
	timestamps?: boolean;
	dataRoot: string;
}

export function registerContainers(program: Command): void {
	program
		.command("run")
		.description("run a command in a new container (pulls the image if needed)")
		.argument("<image>")
		.argument("[cmd...]", "command and arguments (default: the image's)")
		.option("--rm", "remove the container when it exits")
		.option("-d, --detach", "run in the background and print the container id")
		.option("--name <name>", "container name")
		.option("-e, --env <NAME=value>", "environment variable (repeatable)", collect)
		.option("-v, --volume <src:dst[:ro]>", "bind mount or named volume (repeatable)", collect)
		.option("--tmpfs <path>", "tmpfs mount (repeatable)", collect)
		.option("-m, --memory <bytes>", "memory limit, e.g. 256m")
		.option("--cpus <n>", "CPU limit, e.g. 1.5")
		.option("--pids-limit <n>", "process limit")
		.option("--read-only", "read-only root filesystem")
		.option("-u, --user <user[:group]>", "user to run as")
		.option("-w, --workdir <dir>", "working directory")
		.option("--entrypoint <cmd>", "override the image's entrypoint")
		.option("--network <mode>", "none (default), host, or a network namespace path", "none")
		.option("--platform <os/arch[/variant]>", "image platform, e.g. linux/arm64 (runs through qemu if foreign)")
		.option(
			"--security-opt <opt>",
			"seccomp=unconfined or seccomp=PROFILE.json (default: Docker's restrictions)",
			collect,
		)
		.option("--health-cmd <command>", "command (run with /bin/sh -c) that checks the container's health")
		.option("--health-interval <duration>", "time between checks, e.g. 30s")
		.option("--health-timeout <duration>", "how long a check may take, e.g. 30s")
		.option("--health-retries <n>", "consecutive failures before unhealthy")
		.option("--health-start-period <duration>", "grace time after start when failures do not count")
		.option("--no-healthcheck", "disable the image's health check")
		.option("--insecure-registry <host:port>", "a registry reached over plain http (repeatable)", collect)
		.option("--userns <mode>", "host (default) or remap: root in the container is uid 100000 on the host")
		.option("--data-root <dir>", "data directory", dataRoot())
		.passThroughOptions()
		.action(async (image: string, cmd: string[], o: Record<string, unknown>) => {
			const { runContainer } = await import("../runtime/commands.ts");
			process.exitCode = await runContainer(image, cmd, o);
		});
	listOptions(program.command("ps").description("list containers"), ["id", "name", "status", "ancestor"])
		.option("-a, --all", "include stopped containers")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: ListFlags & { all?: boolean; dataRoot: string }) => {
			const { ps } = await import("../runtime/commands.ts");
			ps(o);
		});
	program
		.command("logs")
		.description("print a container's output (stdout lines to stdout, stderr lines to stderr)")
		.argument("<container>")
		.option("-f, --follow", "keep printing new output until the container exits")
		.option("--since <time>", "only output since a time: RFC 3339, unix seconds, or a duration ago (10m)")
		.option("--until <time>", "only output before a time (same forms as --since)")
		.option("-n, --tail <lines>", "only the last lines")
		.option("-t, --timestamps", "prefix each line with its time")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (c: string, o: LogsFlags) => {
			if (o.tail !== undefined && !/^\d+$/.test(o.tail))
				throw new UsageError(`--tail must be a number, got "${o.tail}"`);
			const { logs } = await import("../runtime/commands.ts");
			await logs(c, o);
		});
	program
		.command("stop")
		.description("stop containers (SIGTERM, then SIGKILL after the grace period)")
		.argument("<container...>")
		.option("-t, --time <seconds>", "grace period", "10")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (cs: string[], o: { time: string; dataRoot: string }) => {
			const { stop } = await import("../runtime/commands.ts");
			await stop(cs, o);
		});
	program
		.command("rm")
		.description("remove containers")
		.argument("<container...>")
		.option("-f, --force", "stop running containers first")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (cs: string[], o: { force?: boolean; dataRoot: string }) => {
			const { rm } = await import("../runtime/commands.ts");
			await rm(cs, o);
		});
	program
		.command("exec")
		.description("run a command in a running container")
		.argument("<container>")
		.argument("<cmd...>")
		.option("-e, --env <NAME=value>", "environment variable (repeatable)", collect)
		.option("--data-root <dir>", "data directory", dataRoot())
		.passThroughOptions()
		.action(async (c: string, cmd: string[], o: { env?: string[]; dataRoot: string }) => {
			const { exec } = await import("../runtime/commands.ts");
			process.exitCode = await exec(c, cmd, o);
		});
	program
		.command("stats")
		.description("live CPU, memory and pids of running containers (all of them by default)")
		.argument("[container...]")
		.option("--no-stream", "print one sample and exit")
		.option("--format <format>", "table or json", "table")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (cs: string[], o: { stream: boolean; format: string; dataRoot: string }) => {
			const { stats } = await import("../runtime/commands.ts");
			await stats(cs, o);
		});
	program
		.command("inspect")
		.description("show a container's state as JSON")
		.argument("<container>")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (c: string, o: { dataRoot: string }) => {
			const { inspect } = await import("../runtime/commands.ts");
			inspect(c, o);
		});
}
