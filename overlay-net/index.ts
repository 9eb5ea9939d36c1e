// overlay-net/: VXLAN overlay networks. Imports nothing of tsswarm outside overlay-net/.
export { type Cidr, contains, intToIp, ipToInt, overlaps, parseCidr } from "./cidr.ts";
export { checkEncryptionSupport, type DriverOptions, OverlayDriver } from "./dataplane.ts";
export {
	buildAnswer,
	buildQuery,
	type DnsOptions,
	DnsServer,
	parseAnswer,
	parseQuery,
	resolvConf,
	type ServiceRecord,
} from "./dns.ts";
export * from "./errors.ts";
export { Allocator, type AllocatorState, type NetworkAlloc } from "./ipam.ts";
export {
	EGRESS_TABLE,
	egressRuleset,
	LB_TABLE,
	MESH_TABLE,
	meshRuleset,
	type PublishedPort,
	type VipRule,
	vipRuleset,
} from "./lb.ts";
