// Which compose keys a stack honours, which it ignores with a warning, and which it refuses.
// docker's own lists (docker/cli cli/compose/types) keep their wording, so a Swarm user sees the
// messages they know; what tsswarm has not built yet is warned separately, by key path.

/** Service keys docker's stack deploy ignores, warned as "Ignoring unsupported options: ...". */
export const DOCKER_UNSUPPORTED = [
	"build",
	"cgroupns_mode",
	"cgroup_parent",
	"devices",
	"domainname",
	"external_links",
	"ipc",
	"links",
	"mac_address",
	"network_mode",
	"pid",
	"privileged",
	"restart",
	"security_opt",
	"shm_size",
	"userns_mode",
];

/** Service keys docker warns about as deprecated (and ignores). */
export const DEPRECATED: Record<string, string> = {
	container_name: "Setting the container name is not supported.",
	expose:
		"Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
};

/** Service keys docker refuses, with its reasons. */
export const FORBIDDEN: Record<string, string> = {
	extends: "Support for `extends` is not implemented yet.",
	volume_driver:
		"Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there.",
	volumes_from:
		"To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.",
	cpu_quota: "Set resource limits using deploy.resources",
	cpu_shares: "Set resource limits using deploy.resources",
	cpuset: "Set resource limits using deploy.resources",
	mem_limit: "Set resource limits using deploy.resources",
	memswap_limit: "Set resource limits using deploy.resources",
};

/** Service keys converted into the service spec (convert.ts). */
export const SUPPORTED = [
	"image",
	"command",
	"entrypoint",
	"environment",
	"env_file",
	"ports",
	"volumes",
	"tmpfs",
	"networks",
	"secrets",
	"configs",
	"healthcheck",
	"user",
	"working_dir",
	"hostname",
	"read_only",
	"cap_add",
	"cap_drop",
	"ulimits",
	"stop_grace_period",
	"stop_signal",
	"labels",
	"deploy",
	"depends_on",
];

/** The keys of a deploy block that are converted (the others are warned by path). */
export const DEPLOY_SUPPORTED = [
	"mode",
	"replicas",
	"labels",
	"placement",
	"resources",
	"restart_policy",
	"update_config",
	"rollback_config",
	"endpoint_mode",
];
