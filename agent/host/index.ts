// The agent's libp2p host: identity, members-only protocols, framed request/response.
export { type AllowList, MemoryAllowList } from "./allowlist.ts";
export { type Handler, Host, type HostOptions, type Logger } from "./host.ts";
export { loadOrCreateNodeKey } from "./key.ts";
