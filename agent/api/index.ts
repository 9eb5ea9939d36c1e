// The local control API (unix socket) between the CLI and the agent.
export { ApiError } from "../errors.ts";
export { call, callStream, socketPath } from "./client.ts";
export { type AgentApi, agentRoutes } from "./routes.ts";
export { ControlServer, type ControlServerOptions, DEFAULT_MAX_BODY_BYTES, type Route } from "./server.ts";
export type { NetworkInspect } from "./types.ts";
