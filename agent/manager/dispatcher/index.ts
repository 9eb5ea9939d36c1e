// agent/manager/dispatcher: the leader's side of /tsswarm/dispatch/1 (see agent/dispatch/README.md).
export { Dispatcher, type DispatcherEvents, type DispatcherOptions, type NodeState } from "./dispatcher.ts";
export {
	DispatchEndpoint,
	type DispatchEndpointOptions,
	type DispatchLogger,
	type WorkerLink,
} from "./endpoint.ts";
export {
	clusterDispatchStore,
	type DispatchChange,
	type DispatchStore,
	type FileSource,
	type Versioned,
} from "./store.ts";
