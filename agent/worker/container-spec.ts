// A task's template as the runtime's ContainerSpec: Swarm's names and labels, durations in ms,
// CPUs from nano-CPUs. Pure, so the mapping is tested without a container.
import type { ContainerSpec, HealthcheckSpec, Mount } from "../../runtime/index.ts";
import { containerName, type Task } from "../services/index.ts";

export const LABEL_SERVICE_NAME = "com.docker.swarm.service.name";
export const LABEL_SERVICE_ID = "com.docker.swarm.service.id";
export const LABEL_TASK_ID = "com.docker.swarm.task.id";
export const LABEL_TASK_NAME = "com.docker.swarm.task.name";
export const LABEL_NODE_ID = "com.docker.swarm.node.id";
/** How to stop the container, kept on it (as Docker's StopSignal/StopTimeout) for when its task is gone. */
export const LABEL_STOP_SIGNAL = "io.tsswarm.stop-signal";
export const LABEL_STOP_GRACE = "io.tsswarm.stop-grace-ms";

export interface SpecContext {
	nodeId: string;
	/** os/arch[/variant] this node runs (default: the runtime's machine). */
	platform?: string;
	/** A network namespace path to join (the task's overlay endpoints); default: its own, loopback only. */
	network?: string;
	/** A host file bind-mounted read-only on /etc/resolv.conf (the networks' resolver). */
	resolvConf?: string;
	/** The task's secret and config files (read-only binds from the node's tmpfs, files.ts). */
	files?: Mount[];
}

/** The image a task runs: the pinned reference once resolved, else the one the user named. */
export const taskImage = (t: Task): string => t.image || t.spec.container.image;

export function toContainerSpec(task: Task, ctx: SpecContext): ContainerSpec {
	const c = task.spec.container;
	const limits = task.spec.resources.limits;
	const volumes: Mount[] = [];
	const tmpfs: string[] = [];
	c.mounts.forEach((m, i) => {
		if (m.type === "tmpfs") tmpfs.push(m.target);
		// A volume without a name is the task's own (Docker's anonymous volume), kept per task.
		else
			volumes.push({
				source: m.source ?? `${task.id}-${i}`,
				target: m.target,
				...(m.readOnly ? { readonly: true } : {}),
			});
	});
	if (ctx.resolvConf) volumes.push({ source: ctx.resolvConf, target: "/etc/resolv.conf", readonly: true });
	for (const f of ctx.files ?? []) volumes.push(f);
	const spec: ContainerSpec = {
		image: taskImage(task),
		name: containerName(task),
		env: [...c.env],
		labels: {
			...c.labels,
			[LABEL_SERVICE_NAME]: task.serviceName,
			[LABEL_SERVICE_ID]: task.serviceId,
			[LABEL_TASK_ID]: task.id,
			[LABEL_TASK_NAME]: containerName(task),
			[LABEL_NODE_ID]: ctx.nodeId,
		},
	};
	if (c.stopSignal) spec.labels![LABEL_STOP_SIGNAL] = c.stopSignal;
	if (c.stopGracePeriodMs !== undefined) spec.labels![LABEL_STOP_GRACE] = String(c.stopGracePeriodMs);
	if (ctx.platform) spec.platform = ctx.platform;
	// ContainerTemplate.command is docker's --entrypoint, args the command after the image.
	if (c.command) spec.entrypoint = [...c.command];
	if (c.args) spec.cmd = [...c.args];
	if (c.workdir) spec.workdir = c.workdir;
	if (c.user) spec.user = c.user;
	if (c.hostname) spec.hostname = c.hostname;
	if (c.readOnly) spec.readOnly = true;
	if (limits.nanoCpus) spec.cpus = limits.nanoCpus / 1e9;
	if (limits.memoryBytes) spec.memory = limits.memoryBytes;
	if (volumes.length) spec.volumes = volumes;
	if (tmpfs.length) spec.tmpfs = tmpfs;
	if (c.capAdd.length) spec.capAdd = [...c.capAdd];
	if (c.capDrop.length) spec.capDrop = [...c.capDrop];
	if (c.ulimits?.length) spec.ulimits = c.ulimits.map((u) => ({ ...u }));
	if (ctx.network) spec.network = ctx.network;
	const h = c.healthcheck;
	if (h) {
		const hc: HealthcheckSpec = { test: [...h.test] };
		if (h.intervalMs) hc.interval = h.intervalMs;
		if (h.timeoutMs) hc.timeout = h.timeoutMs;
		// 0 means "the default" in Swarm's spec; the runtime wants a positive count.
		if (h.retries) hc.retries = h.retries;
		if (h.startPeriodMs) hc.startPeriod = h.startPeriodMs;
		spec.healthcheck = hc;
	}
	return spec;
}
