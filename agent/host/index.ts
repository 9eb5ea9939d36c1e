// The agent's libp2p host: identity, members-only protocols, framed request/response.
export { type AllowList, MemoryAllowList } from "./allowlist.ts";
export {
	DEFAULT_PORT,
	type Handler,
	type HandlerContext,
	Host,
	type HostEvents,
	type HostOptions,
	type Logger,
	tcpAddr,
} from "./host.ts";
export { loadOrCreateNodeKey } from "./key.ts";
