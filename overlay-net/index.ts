// overlay-net/: VXLAN overlay networks. Imports nothing of tsswarm outside overlay-net/.
export { type Cidr, contains, intToIp, ipToInt, overlaps, parseCidr } from "./cidr.ts";
export { type DriverOptions, OverlayDriver } from "./dataplane.ts";
export {
	buildAnswer,
	buildQuery,
	type DnsOptions,
	DnsServer,
	parseAnswer,
	parseQuery,
	resolvConf,
	type ServiceRecord,
	truncateForUdp,
	UDP_MAX,
} from "./dns.ts";
export { forwardQuery, nodeUpstreams, parseResolvConf, type ResolvConf } from "./dns-forward.ts";
export { checkEncryptionSupport, type EncryptionSupport, probeEncryption } from "./encryption.ts";
export * from "./errors.ts";
export { macFor, type RemoteEndpoint } from "./fdb.ts";
export { Allocator, type AllocatorState, type NetworkAlloc, type PortOptions } from "./ipam.ts";
export {
	EGRESS_TABLE,
	egressRuleset,
	HOST_TABLE,
	type HostPublishedPort,
	hostRuleset,
	LB_TABLE,
	MESH_TABLE,
	meshRuleset,
	type PublishedPort,
	TUNNEL_TABLE,
	tunnelRuleset,
	type VipRule,
	vipRuleset,
} from "./lb.ts";
export { main as netnsSocket } from "./netns-socket.ts";
export type { ReconcileOptions, ReconcileResult, TaskEndpoint } from "./reconcile.ts";
