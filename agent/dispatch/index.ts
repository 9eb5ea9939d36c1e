// agent/dispatch: /tsswarm/dispatch/1, the stream from the leader's dispatcher to each worker
// (its assignments, nothing else) and back (status reports, heartbeats); the worker's client.
export {
	type Assignment,
	type AssignmentSink,
	type ClientLogger,
	DispatcherClient,
	type DispatcherClientEvents,
	type DispatcherClientOptions,
	type DispatchIo,
	type LocalDispatch,
} from "./client.ts";
export * from "./errors.ts";
export {
	type AssignedFile,
	type AssignedNetwork,
	type AssignmentsMessage,
	DISPATCH_PROTOCOL,
	type LeaderMessage,
	LIMITS,
	type MeshPort,
	type MeshView,
	type NetworkView,
	NOTICES,
	type Notice,
	parseLeaderMessage,
	parseStatus,
	parseWorkerMessage,
	type StatusReport,
	type ViewService,
	type WorkerMessage,
} from "./protocol.ts";
