// agent/manager: what runs on managers — the store, leader forwarding, allocation decisions.

export * from "./dispatcher/index.ts";
export * from "./errors.ts";
export { checkFence, type Fence } from "./fence.ts";
export { describeLoss, type LostWithLastManager, removeLeaver } from "./handoff.ts";
export {
	fetchClusterSecret,
	JoinKeys,
	type JoinMaterial,
	newJoinMaterial,
	openJoinKeys,
	sealJoinMaterial,
} from "./joinkeys.ts";
export { type LogItem, type LogsQuery, type LogTask, parseLogsQuery } from "./logs.ts";
export { type InitOptions, Manager, type ManagerOptions } from "./manager.ts";
export {
	type ClusterRecord,
	inspectNetwork,
	type NetworkRecord,
	type NetworkSpec,
	validateNetworkSpec,
} from "./networks.ts";
export { findNode, type NodeInspect, type NodeUpdate, parseNodeUpdate } from "./nodes.ts";
export type { RecoverySummary } from "./recovery.ts";
export { LeaderRpc, MANAGER_PROTOCOL } from "./rpc.ts";
export type { ServiceRow, TaskRow } from "./services.ts";
