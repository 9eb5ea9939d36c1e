import type { Command } from "commander";
import type { ListFlags } from "../format.ts";
import type { CreateFlags } from "../service/flags.ts";
import type { LogsFlags } from "../service/logs.ts";
import type { PolicyFlags, UpdateFlags } from "../service/update-flags.ts";
import { collect, dataRoot, listOptions } from "./options.ts";

/** docker service create's flags (those tsswarm has). */
function specOptions(c: Command): Command {
	c.option("--name <name>", "service name")
		.option("--replicas <n>", "number of tasks (jobs: completions)")
		.option("--mode <mode>", "replicated, global, replicated-job or global-job", "replicated")
		.option("--max-concurrent <n>", "jobs: tasks running at once")
		.option("-e, --env <KEY=VALUE>", "environment variable (repeatable)", collect, [])
		.option("--env-file <file>", "read environment variables from a file (repeatable)", collect, [])
		.option("-l, --label <key=value>", "service label (repeatable)", collect, [])
		.option("--container-label <key=value>", "container label (repeatable)", collect, [])
		.option("--mount <mount>", "type=bind|volume|tmpfs,source=...,target=...[,readonly] (repeatable)", collect, [])
		.option("--network <network>", "attach to an overlay network: NAME or name=NAME,alias=A (repeatable)", collect, [])
		.option(
			"--secret <secret>",
			"give the tasks a secret: NAME or source=NAME,target=T,uid=U,gid=G,mode=0400 (repeatable)",
			collect,
			[],
		)
		.option(
			"--config <config>",
			"give the tasks a config: NAME or source=NAME,target=/PATH,... (repeatable)",
			collect,
			[],
		)
		.option(
			"-p, --publish <port>",
			"PUBLISHED:TARGET[/PROTO] or published=,target=,protocol=,mode= (repeatable)",
			collect,
			[],
		)
		.option("--constraint <expr>", "placement constraint, e.g. node.labels.zone==a (repeatable)", collect, [])
		.option("--placement-pref <pref>", "placement preference spread=node.labels.KEY (repeatable)", collect, []);
	return containerOptions(c);
}

/** The flags create and update share as they are (resources, restart policy, health, container). */
function containerOptions(c: Command): Command {
	return c
		.option("--replicas-max-per-node <n>", "at most this many tasks of the service per node")
		.option("--reserve-cpu <cpus>", "CPUs to reserve")
		.option("--reserve-memory <bytes>", "memory to reserve, e.g. 64m")
		.option("--limit-cpu <cpus>", "CPU limit")
		.option("--limit-memory <bytes>", "memory limit")
		.option("--restart-condition <condition>", "none, on-failure or any")
		.option("--restart-delay <duration>", "delay between restart attempts")
		.option("--restart-max-attempts <n>", "restarts before giving up (0: no limit)")
		.option("--restart-window <duration>", "window the attempts count in")
		.option("--health-cmd <command>", "health check command (CMD-SHELL)")
		.option("--health-interval <duration>", "time between checks")
		.option("--health-timeout <duration>", "time a check may take")
		.option("--health-retries <n>", "failures before unhealthy")
		.option("--health-start-period <duration>", "grace period before failures count")
		.option("--no-healthcheck", "disable the image's health check")
		.option("-u, --user <user>", "user[:group]")
		.option("-w, --workdir <dir>", "working directory")
		.option("--entrypoint <command>", "override the image's entrypoint")
		.option("--hostname <name>", "container hostname")
		.option("--stop-grace-period <duration>", "time to wait before killing a container")
		.option("--stop-signal <signal>", "signal to stop a container")
		.option("--read-only", "mount the container's root filesystem read-only")
		.option("--cap-add <cap>", "add a Linux capability (repeatable)", collect, [])
		.option("--cap-drop <cap>", "drop a Linux capability (repeatable)", collect, []);
}

/** --update-* and --rollback-* (create and update). */
function policyOptions(c: Command): Command {
	for (const kind of ["update", "rollback"] as const)
		c.option(`--${kind}-parallelism <n>`, `tasks ${kind === "update" ? "updated" : "rolled back"} at once (0: all)`)
			.option(`--${kind}-delay <duration>`, `delay between task ${kind}s`)
			.option(`--${kind}-order <order>`, `${kind} order: stop-first or start-first`)
			.option(
				`--${kind}-failure-action <action>`,
				kind === "update" ? "on failure: pause, continue or rollback" : "on failure: pause or continue",
			)
			.option(`--${kind}-monitor <duration>`, `how long after each task's ${kind} a failure counts`)
			.option(`--${kind}-max-failure-ratio <ratio>`, "failure rate tolerated (0 to 1)")
			.option(`--${kind}-timeout <duration>`, "a new task not running (and healthy) by then is a failure");
	return c;
}

/** docker service update's flags (those tsswarm has): each create flag's update form. */
function updateOptions(c: Command): Command {
	containerOptions(c)
		.option("--image <image>", "service image (its digest and platforms are resolved again)")
		.option("--args <command>", "service command arguments")
		.option("--replicas <n>", "number of tasks (jobs: completions)")
		.option("--max-concurrent <n>", "jobs: tasks running at once")
		.option("--env-add <KEY=VALUE>", "add or update an environment variable (repeatable)", collect, [])
		.option("--env-rm <KEY>", "remove an environment variable (repeatable)", collect, [])
		.option("--label-add <key=value>", "add or update a service label (repeatable)", collect, [])
		.option("--label-rm <key>", "remove a service label (repeatable)", collect, [])
		.option("--container-label-add <key=value>", "add or update a container label (repeatable)", collect, [])
		.option("--container-label-rm <key>", "remove a container label (repeatable)", collect, [])
		.option("--mount-add <mount>", "add or update a mount (repeatable)", collect, [])
		.option("--mount-rm <target>", "remove the mount at this target (repeatable)", collect, [])
		.option("--network-add <network>", "attach to a network (repeatable)", collect, [])
		.option("--network-rm <network>", "detach from a network (repeatable)", collect, [])
		.option("--publish-add <port>", "publish a port (repeatable)", collect, [])
		.option("--publish-rm <port>", "unpublish TARGET[/PROTO] or PUBLISHED:TARGET[/PROTO] (repeatable)", collect, [])
		.option("--constraint-add <expr>", "add a placement constraint (repeatable)", collect, [])
		.option("--constraint-rm <expr>", "remove a placement constraint (repeatable)", collect, [])
		.option("--secret-add <secret>", "add or update a secret (as --secret; repeatable)", collect, [])
		.option("--secret-rm <name>", "remove a secret (repeatable)", collect, [])
		.option("--config-add <config>", "add or update a config (as --config; repeatable)", collect, [])
		.option("--config-rm <name>", "remove a config (repeatable)", collect, [])
		.option("--placement-pref-add <pref>", "add a placement preference (repeatable)", collect, [])
		.option("--placement-pref-rm <pref>", "remove a placement preference (repeatable)", collect, []);
	return c;
}

export function registerService(program: Command): void {
	const service = program.command("service").description("manage services (run on a manager)");
	specOptions(
		policyOptions(service.command("create"))
			.description("create a service")
			.argument("<image>")
			.argument("[command...]", "command and arguments")
			.option("-d, --detach", "exit immediately instead of waiting for the service to converge")
			.option("-q, --quiet", "suppress progress output")
			.option("--data-root <dir>", "data directory", dataRoot()),
	)
		// docker's: what follows the image is the command, flags and all (`sh -c '...'`).
		.passThroughOptions()
		.action(
			async (
				image: string,
				args: string[],
				o: CreateFlags & PolicyFlags & { detach?: boolean; quiet?: boolean; dataRoot: string },
			) => {
				const { serviceCreate } = await import("../service/commands.ts");
				await serviceCreate(image, args, o);
			},
		);
	listOptions(service.command("ls").alias("list").description("list services"), ["id", "name", "mode"])
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (o: ListFlags & { dataRoot: string }) => {
			const { serviceLs } = await import("../service/commands.ts");
			await serviceLs(o);
		});
	listOptions(service.command("ps").description("list the tasks of services").argument("<service...>"), [
		"desired-state",
		"node",
		"id",
		"name",
	])
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (refs: string[], o: ListFlags & { dataRoot: string }) => {
			const { servicePs } = await import("../service/commands.ts");
			await servicePs(refs, o);
		});
	service
		.command("inspect")
		.description("show services as JSON")
		.argument("<service...>")
		.option("--pretty", "human-readable")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (refs: string[], o: { pretty?: boolean; dataRoot: string }) => {
			const { serviceInspect } = await import("../service/commands.ts");
			await serviceInspect(refs, o);
		});
	service
		.command("logs")
		.description("fetch the logs of a service or task, from every node that runs one")
		.argument("<service|task>")
		.option("-f, --follow", "follow log output")
		.option("-n, --tail <lines>", "number of lines from the end of each task's log, or all", "all")
		.option("--since <time>", "only lines since an RFC 3339 time, unix seconds or a duration ago (10m)")
		.option("-t, --timestamps", "show timestamps")
		.option("--raw", "no NAME.SLOT.TASKID@NODE prefix")
		.option("--no-trunc", "full task ids")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (ref: string, o: LogsFlags) => {
			const { serviceLogs } = await import("../service/logs.ts");
			await serviceLogs(ref, o);
		});
	service
		.command("scale")
		.description("scale replicated services")
		.argument("<service=replicas...>")
		.option("-d, --detach", "exit immediately instead of waiting for the service to converge")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (pairs: string[], o: { detach?: boolean; dataRoot: string }) => {
			const { serviceScale } = await import("../service/commands.ts");
			await serviceScale(pairs, o);
		});
	updateOptions(
		policyOptions(
			service
				.command("update")
				.description("update a service (a rolling update of its tasks when their template changes)")
				.argument("<service>")
				.option("--force", "replace every task even if nothing changed")
				.option("--rollback", "roll back to the previous spec (as service rollback)")
				.option("--version <n>", "refuse the update unless the service is at this version (service inspect)")
				.option("-d, --detach", "exit immediately instead of waiting for the update")
				.option("-q, --quiet", "suppress progress output")
				.option("--data-root <dir>", "data directory", dataRoot()),
		),
	).action(
		async (
			ref: string,
			o: UpdateFlags & {
				force?: boolean;
				rollback?: boolean;
				version?: string;
				detach?: boolean;
				quiet?: boolean;
				dataRoot: string;
			},
		) => {
			const { serviceUpdate } = await import("../service/update.ts");
			await serviceUpdate(ref, o);
		},
	);
	service
		.command("rollback")
		.description("roll a service back to its previous spec")
		.argument("<service>")
		.option("-d, --detach", "exit immediately instead of waiting for the rollback")
		.option("-q, --quiet", "suppress progress output")
		.option("--version <n>", "refuse unless the service is at this version")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (ref: string, o: { detach?: boolean; quiet?: boolean; version?: string; dataRoot: string }) => {
			const { serviceRollback } = await import("../service/update.ts");
			await serviceRollback(ref, o);
		});
	service
		.command("rm")
		.alias("remove")
		.description("remove services")
		.argument("<service...>")
		.option("--data-root <dir>", "data directory", dataRoot())
		.action(async (refs: string[], o: { dataRoot: string }) => {
			const { serviceRm } = await import("../service/commands.ts");
			await serviceRm(refs, o);
		});
}
