// The lab harness: a real multi-node network on one machine, made of network namespaces.
// Used by `tsswarm lab ...`, by every multi-node test (tests/helpers/lab.ts) and by benchmarks.
export {
	agentRunning,
	assignPlatforms,
	cliPath,
	foreignNodePath,
	hostPlatform,
	supportedPlatforms,
} from "./agents.ts";
export {
	cutNode,
	formCluster,
	healNode,
	MAX_MANAGERS,
	type NodeActionResult,
	type NodeView,
	nodeList,
	startNode,
	stopNode,
} from "./cluster.ts";
export { type CreateLabOptions, createLab } from "./create.ts";
export { destroyLab, destroyRecord, existingNetns, isStale, labNetnsList, sweepStaleLabs } from "./destroy.ts";
export * from "./errors.ts";
export { execInNode, execInteractive, findNode, labNodeEnv, loadLab, netnsArgv } from "./exec.ts";
export { type LabSummary, listLabs } from "./list.ts";
export * from "./names.ts";
export { checkNewAddress, moveAddress } from "./readdr.ts";
export { type RunResult, run } from "./shell.ts";
export {
	identify,
	isAlive,
	isRunning,
	type LabNode,
	type LabRecord,
	labRoot,
	type ProcessIdentity,
	pidAlive,
	readRecord,
} from "./state.ts";
