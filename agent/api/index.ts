// The local control API (unix socket) between the CLI and the agent.
export { ApiError, InvalidRequestError } from "../errors.ts";
export { ApiClient, type ApiClientOptions, type CallOptions, call, callStream, socketPath } from "./client.ts";
export { type Check, type CompiledRoute, match, type RouteDef, type RouteRequest, routes } from "./route.ts";
export { type AgentApi, type AgentInfo, type AgentNode, agentRoutes } from "./routes.ts";
export {
	ControlServer,
	type ControlServerOptions,
	DEFAULT_MAX_BODY_BYTES,
	type Route,
	untypedRoutes,
} from "./server.ts";
export type {
	ApiRoutes,
	BodyOf,
	ForceNewClusterResponse,
	InfoResponse,
	InitRequest,
	InitResponse,
	ItemOf,
	JoinRequest,
	JoinTokenRequest,
	JoinTokenResponse,
	LeaveRequest,
	LeaveResponse,
	LostWithLastManager,
	MemberState,
	Method,
	NetworkCreateRequest,
	NetworkInspect,
	NodeInspect,
	NodeRemoveRequest,
	NodeView,
	PathParams,
	QueryOf,
	RecoverySummary,
	RequestOf,
	ResponseOf,
	RouteMap,
	RouteShape,
	ServiceRecord,
	ServiceRow,
	StreamError,
	StreamRoute,
	TaskRow,
	UnaryRoute,
} from "./types.ts";
