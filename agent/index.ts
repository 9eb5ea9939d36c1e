// agent/: the one process on every machine.
export { Agent, type AgentOptions, pickAdvertiseIp } from "./agent.ts";
export * from "./api/index.ts";
export * from "./errors.ts";
export * from "./host/index.ts";
export * from "./join/index.ts";
