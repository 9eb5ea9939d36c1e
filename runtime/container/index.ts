// Containers: OCI spec, overlay rootfs, runc driver with a shim, limits, platforms.
export {
	type Healthcheck,
	type HealthcheckSpec,
	type HealthProbe,
	type HealthState,
	type HealthStatus,
	parseDuration,
	resolveHealthcheck,
} from "./health.ts";
export { parseCpus, parseMemory, parsePidsLimit } from "./limits.ts";
export { checkRunnable } from "./platform.ts";
export { type ContainerState, type ContainerStatus, Runtime, type RuntimeOptions } from "./runtime.ts";
export { buildOciSpec, type ContainerSpec, DEFAULT_CAPS, type Mount } from "./spec.ts";
