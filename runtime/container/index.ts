// Containers: OCI spec, overlay rootfs, runc driver with a shim, limits, platforms.
export {
	allCgroupDirs,
	type CgroupLayout,
	type CgroupMode,
	type CgroupStats,
	cgroupDirs,
	detectCgroups,
	readCgroupStats,
} from "./cgroups.ts";
export type { ContainerRuntime, Signalled } from "./contract.ts";
export {
	type Healthcheck,
	type HealthcheckSpec,
	type HealthProbe,
	type HealthState,
	type HealthStatus,
	parseDuration,
	resolveHealthcheck,
} from "./health.ts";
export { type RuntimeHelper, runHelper } from "./helpers.ts";
export { parseCpus, parseMemory, parsePidsLimit, parseSize } from "./limits.ts";
export { stopLogDaemon } from "./logd-client.ts";
export { type LogEntry, type LogOptions, parseTime, readLogs } from "./logs.ts";
export { checkRunnable } from "./platform.ts";
export { procStart } from "./proc.ts";
export {
	type ContainerState,
	type ContainerStatus,
	EXIT_UNKNOWN,
	Runtime,
	type RuntimeOptions,
} from "./runtime.ts";
export { defaultSeccompProfile } from "./seccomp.ts";
export {
	buildOciSpec,
	type ContainerSpec,
	DEFAULT_CAPS,
	effectiveCaps,
	type Mount,
	ULIMITS,
	type Ulimit,
} from "./spec.ts";
