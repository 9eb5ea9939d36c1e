// agent/manager/allocator: overlay addresses for tasks, service VIPs and published ports, as a pure
// pass over versioned records (allocate) and the leader loop that runs it (AllocatorComponent).
export { allocate } from "./allocate.ts";
export { AllocatorComponent, type AllocatorLogger, type AllocatorOptions, type AllocatorSource } from "./component.ts";
export * from "./errors.ts";
export { nodeIngressAddresses, nodeReserve } from "./node-addresses.ts";
export { checkPorts } from "./ports.ts";
export * from "./types.ts";
