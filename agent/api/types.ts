// The local API's shapes, one type per shape, shared by the agent that builds them and the CLI that
// reads them; `ApiRoutes` names every route with its request and response, so both sides agree at
// compile time. Types only: importing this file costs the CLI nothing at run time.

import type { LostWithLastManager, NodeInspect, RecoverySummary, ServiceRow, TaskRow } from "../manager/index.ts";
import type { Service, ServiceSpec } from "../services/index.ts";
import type { StoredRecord } from "../store/index.ts";

export type { LostWithLastManager, NodeInspect, RecoverySummary, ServiceRow, TaskRow };

/** A service as `service inspect` shows it: the store's record (id, version, value). */
export type ServiceRecord = StoredRecord<Service>;

export type Method = "GET" | "POST" | "PUT" | "DELETE";

/** The path parameters of a route path: PathParams<"/v1/services/:id/tasks/:slot"> = { id; slot }. */
export type PathParams<P extends string> = P extends `${string}:${infer Name}/${infer Rest}`
	? { [K in Name]: string } & PathParams<`/${Rest}`>
	: P extends `${string}:${infer Name}`
		? { [K in Name]: string }
		: Record<never, never>;

// ---- cluster and node ----

export type Role = "manager" | "worker";

export interface Platform {
	os: string;
	architecture: string;
	variant?: string;
}

/** `GET /v1/info`: this node and the cluster as it sees it (`tsswarm info`). */
export interface InfoResponse {
	nodeId: string;
	/** Where this node's libp2p listens (multiaddrs). */
	addrs: string[];
	clusterId: string | null;
	role: Role | null;
	/** Managers only: the Raft view of this node's replica. */
	raft: { leader: string | null; isLeader: boolean; term: number; index: number } | null;
	/** The directory (the allow-list): its store version and how many nodes it holds. */
	directory: { version: number; nodes: number };
	membership: { alive: number } | null;
	/** Managers in the directory (null: not in a cluster). */
	managers: number | null;
	/** The Raft leader's node id, as far as this node knows (null on workers and without a leader). */
	leader: string | null;
	/** Tasks running on this node (null until this node runs a worker). */
	tasksRunning: number | null;
	/** A manager that restarted with autolock on and waits for `tsswarm unlock`. */
	locked?: boolean;
}

export interface InitRequest {
	/** Address pools for networks created without a subnet (default 10.0.0.0/8). */
	addrPools?: string[];
	/** Prefix length of each network's subnet from the pools (default 24). */
	subnetSize?: number;
	/** Seal the managers' keys with an unlock key, printed once (tsswarm init --autolock). */
	autolock?: boolean;
}

export interface InitResponse extends InfoResponse {
	tokens: { manager: string; worker: string };
	/** ip:port others join at. */
	advertise: string;
	/** With autolock: the unlock key (shown once). */
	unlockKey?: string;
}

/** `swarm update --autolock`: whether it changed anything, and the new unlock key when turned on. */
export interface SwarmUpdateResponse {
	autolock: boolean;
	changed: boolean;
	unlockKey?: string;
}

export interface JoinRequest {
	token: string;
	/** A manager's ip:port. */
	addr: string;
}

export interface JoinTokenRequest {
	role: Role;
	rotate?: boolean;
}

export interface JoinTokenResponse {
	token: string;
}

/** Membership's view of a node: alive, suspect (missed probes), dead, left (it said so), unknown. */
export type MemberState = "alive" | "suspect" | "dead" | "left" | "unknown";

/** `GET /v1/nodes`: one node as `node ls` shows it. */
export interface NodeView {
	id: string;
	/** The node's name in the cluster (its record's; on workers, which keep no records, its address). */
	hostname: string;
	addr: string;
	/** From membership (gossip): whether it is reachable now. */
	state: MemberState;
	role: Role;
	/** active, pause or drain (null where this node keeps no records: on workers). */
	availability: "active" | "pause" | "drain" | null;
	/** Leader, Reachable or Unreachable for Raft voters; "" otherwise. */
	managerStatus: "" | "Leader" | "Reachable" | "Unreachable" | "Catching up";
	platform: Platform | null;
	engineVersion: string | null;
	/** Whether it is this node. */
	self: boolean;
	labels: Record<string, string>;
}

export interface NodeRemoveRequest {
	force?: boolean;
}

export interface LeaveRequest {
	force?: boolean;
}

/** `POST /v1/leave`: the cluster left; `lost` when this was the last manager (leave --force). */
export interface LeaveResponse {
	left: string;
	lost?: LostWithLastManager;
}

/** `POST /v1/force-new-cluster` (init --force-new-cluster): this node now votes alone; what it kept. */
export interface ForceNewClusterResponse extends InfoResponse {
	recovered: RecoverySummary;
}

// ---- networks ----

/** `POST /v1/networks`: what `network create` sends (the manager checks the values). */
export interface NetworkCreateRequest {
	name: string;
	driver?: string;
	subnet?: string;
	gateway?: string;
	attachable?: boolean;
	internal?: boolean;
	ingress?: boolean;
	options?: Record<string, string>;
	labels?: Record<string, string>;
}

/** `network inspect` / `network ls`: docker's shape, so scripts written for it keep working. */
export interface NetworkInspect {
	Name: string;
	Id: string;
	Created: string;
	Scope: "swarm";
	Driver: string;
	EnableIPv6: boolean;
	IPAM: { Driver: string; Config: Array<{ Subnet: string; Gateway: string }> };
	Internal: boolean;
	Attachable: boolean;
	Ingress: boolean;
	Options: Record<string, string>;
	Labels: Record<string, string>;
	/** The store version (Raft index) of the record. */
	Version: number;
}

// ---- secrets and configs ----

/** `secret create` / `config create`: the data as base64 (1 byte to 500 KB). */
export interface FileObjectCreateRequest {
	name: string;
	data: string;
	labels?: Record<string, string>;
}

/** `secret update` / `config update` (beyond Swarm): new data makes a new version and rolls the services using it. */
export interface FileObjectUpdateRequest {
	ref: string;
	data?: string;
	labels?: Record<string, string>;
}

/** `secret inspect` / `ls`: docker's fields plus the data version and size; never the data. */
export interface SecretInspect {
	ID: string;
	Version: { Index: number };
	CreatedAt: string;
	UpdatedAt: string;
	Spec: { Name: string; Labels: Record<string, string> };
	/** The version of the data new tasks get (1, then one more per update that changed it). */
	DataVersion: number;
	DataSize: number;
}

/** `config inspect`: as a secret's, with the data (base64) in Spec as docker shows it. */
export interface ConfigInspect extends Omit<SecretInspect, "Spec"> {
	Spec: { Name: string; Labels: Record<string, string>; Data: string };
}

/** An update's answer: the object, and the services it rolls (names). */
export type SecretUpdateResponse = SecretInspect & { Services: string[] };
export type ConfigUpdateResponse = ConfigInspect & { Services: string[] };

// ---- the route table ----

/**
 * Every route: `body` is the JSON request body (absent: none), `query` the query string's
 * parameters, `response` a unary route's answer, `stream` the item type of an NDJSON stream.
 * Path parameters come from the key (`:ref`).
 */
export interface ApiRoutes {
	"GET /v1/info": { response: InfoResponse };
	"POST /v1/init": { body: InitRequest; response: InitResponse };
	"POST /v1/join": { body: JoinRequest; response: InfoResponse };
	"POST /v1/join-token": { body: JoinTokenRequest; response: JoinTokenResponse };
	"POST /v1/unlock": { body: { key: string }; response: { unlocked: boolean } };
	"POST /v1/swarm/update": { body: { autolock?: boolean }; response: SwarmUpdateResponse };
	"POST /v1/unlock-key": { body: { rotate?: boolean }; response: { unlockKey: string | null } };
	"POST /v1/leave": { body: LeaveRequest; response: LeaveResponse };
	"POST /v1/force-new-cluster": { body: Record<string, never>; response: ForceNewClusterResponse };
	"GET /v1/nodes": { response: NodeView[] };
	"DELETE /v1/nodes/:id": { body: NodeRemoveRequest; response: { id: string } };
	"GET /v1/networks": { response: NetworkInspect[] };
	"POST /v1/networks": { body: NetworkCreateRequest; response: NetworkInspect };
	"GET /v1/networks/:ref": { response: NetworkInspect };
	"DELETE /v1/networks/:ref": { response: { id: string } };
	// Services: the spec itself is checked whole by the manager (validateServiceSpec, names the field).
	"POST /v1/services/create": { body: { spec: Record<string, unknown> }; response: ServiceRecord };
	/** The spec checked and normalized (defaults filled in), nothing written: stack deploy's first pass. */
	"POST /v1/services/validate": { body: { spec: Record<string, unknown> }; response: ServiceSpec };
	"GET /v1/services": { response: ServiceRow[] };
	"POST /v1/services/inspect": { body: { ref: string }; response: ServiceRecord };
	"POST /v1/services/ps": { body: { ref: string }; response: TaskRow[] };
	"POST /v1/services/scale": { body: { ref: string; replicas: number }; response: ServiceRow };
	"POST /v1/services/update": {
		body: { ref: string; spec: Record<string, unknown>; version?: number; force?: boolean };
		response: ServiceRecord;
	};
	"POST /v1/services/rollback": { body: { ref: string; version?: number }; response: ServiceRecord };
	"POST /v1/services/rm": { body: { ref: string }; response: { id: string } };
	"POST /v1/nodes/ps": { body: { ref?: string; id?: string }; response: TaskRow[] };
	"POST /v1/nodes/inspect": { body: { refs: string[] }; response: NodeInspect[] };
	"POST /v1/nodes/update": { body: { ref: string; update: Record<string, unknown> }; response: NodeInspect };
	"POST /v1/secrets/create": { body: FileObjectCreateRequest; response: SecretInspect };
	"GET /v1/secrets": { response: SecretInspect[] };
	"POST /v1/secrets/inspect": { body: { ref: string }; response: SecretInspect };
	"POST /v1/secrets/update": { body: FileObjectUpdateRequest; response: SecretUpdateResponse };
	"POST /v1/secrets/rm": { body: { ref: string }; response: { id: string } };
	"POST /v1/configs/create": { body: FileObjectCreateRequest; response: ConfigInspect };
	"GET /v1/configs": { response: ConfigInspect[] };
	"POST /v1/configs/inspect": { body: { ref: string }; response: ConfigInspect };
	"POST /v1/configs/update": { body: FileObjectUpdateRequest; response: ConfigUpdateResponse };
	"POST /v1/configs/rm": { body: { ref: string }; response: { id: string } };
	"GET /v1/swarm/autopilot": { response: AutopilotView };
	"POST /v1/swarm/autopilot": { body: { autopilot: Record<string, unknown> }; response: AutopilotView };
}

/** Autopilot's settings (`tsswarm swarm update`); voters absent: automatic (3, or 5 with 5+ nodes). */
export interface AutopilotView {
	voters?: number;
	deadServerThresholdMs: number;
	stabilizationMs: number;
	minQuorum: number;
}

/** What one route's entry may say. */
export interface RouteShape {
	body?: unknown;
	query?: Record<string, string | undefined>;
	response?: unknown;
	stream?: unknown;
}

/** A table of routes (ApiRoutes, or a test's own). */
export type RouteMap<R> = { [K in keyof R]: RouteShape };

export type PathOf<K extends string> = K extends `${Method} ${infer P}` ? P : never;

type Field<S, F extends string> = S extends { [k in F]: infer T } ? T : undefined;

export type BodyOf<K extends keyof R, R = ApiRoutes> = Field<R[K], "body">;
export type QueryOf<K extends keyof R, R = ApiRoutes> = Field<R[K], "query">;
export type ResponseOf<K extends keyof R, R = ApiRoutes> = Field<R[K], "response">;
export type ItemOf<K extends keyof R, R = ApiRoutes> = Field<R[K], "stream">;

/** Routes that answer once, and routes that answer with an NDJSON stream. */
export type UnaryRoute<R = ApiRoutes> = {
	[K in keyof R & string]: R[K] extends { response: unknown } ? K : never;
}[keyof R & string];
export type StreamRoute<R = ApiRoutes> = {
	[K in keyof R & string]: R[K] extends { stream: unknown } ? K : never;
}[keyof R & string];

type Maybe<K extends string, T> = [T] extends [undefined] ? { [k in K]?: undefined } : { [k in K]: T };
type ParamsOf<K extends string> = keyof PathParams<PathOf<K>> extends never ? undefined : PathParams<PathOf<K>>;

/** What a call of route K passes: its path parameters, body and query, each where K has one. */
export type RequestOf<K extends keyof R & string, R = ApiRoutes> = Maybe<"params", ParamsOf<K>> &
	Maybe<"body", BodyOf<K, R>> &
	Maybe<"query", QueryOf<K, R>>;

/** An NDJSON stream's failure after it began: the last line, never a valid item of any stream. */
export interface StreamError {
	$error: { message: string; code: string; status: number };
}
