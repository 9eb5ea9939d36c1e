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
	ConfigInspect,
	ConfigUpdateResponse,
	FileObjectCreateRequest,
	FileObjectUpdateRequest,
	InfoResponse,
	InitRequest,
	InitResponse,
	ItemOf,
	JoinRequest,
	JoinTokenRequest,
	JoinTokenResponse,
	LeaveRequest,
	MemberState,
	Method,
	NetworkCreateRequest,
	NetworkInspect,
	NodeInspect,
	NodeRemoveRequest,
	NodeView,
	PathParams,
	QueryOf,
	RequestOf,
	ResponseOf,
	RouteMap,
	RouteShape,
	SecretInspect,
	SecretUpdateResponse,
	ServiceRecord,
	ServiceRow,
	StreamError,
	StreamRoute,
	TaskRow,
	UnaryRoute,
} from "./types.ts";
