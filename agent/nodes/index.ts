// agent/nodes: the cluster's node records and this node's directory of members (the allow-list).
export {
	AddressFollower,
	type AddressFollowerOptions,
	type MemberSource,
	type MemberView,
	memberAddrs,
} from "./addresses.ts";
export {
	type DirectoryEntry,
	type DirectoryEvents,
	MAX_DIRECTORY_ENTRIES,
	NodeDirectory,
	validateEntries,
} from "./directory.ts";
export * from "./errors.ts";
export {
	type Availability,
	type NodeDescription,
	type NodeRecord,
	type NodeRole,
	nodeRecord,
	type Platform,
	parseNodeRecord,
	validAddr,
	validateDescription,
	validPeerId,
} from "./record.ts";
export {
	DirectorySync,
	type DirectorySyncOptions,
	NODES_LIST,
	type NodesListReply,
	parseNodesListReply,
} from "./sync.ts";
