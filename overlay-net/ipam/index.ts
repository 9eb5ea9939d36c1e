// The pure half of overlay-net: CIDR math and the IP/VNI/port allocator, no kernel. Managers
// import this face (they never touch the machine); the data plane is overlay-net/index.ts.
export { type Cidr, contains, intToIp, ipToInt, overlaps, parseCidr } from "../cidr.ts";
export * from "../errors.ts";
export { Allocator, type AllocatorState, type NetworkAlloc, type PortOptions } from "../ipam.ts";
