// The local control API (unix socket) between the CLI and the agent.
export { call, socketPath } from "./client.ts";
export { ControlServer, type Route } from "./server.ts";
export type { NetworkInspect } from "./types.ts";
