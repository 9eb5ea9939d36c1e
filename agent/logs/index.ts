// agent/logs: /tsswarm/logs/1, task logs across the cluster: every node serves its own tasks'
// logs to managers; the manager serving `service logs` asks each node and merges.
export { type LogsClientOptions, logsClient, type TaskLogFetcher, type TaskLogRequest } from "./client.ts";
export * from "./errors.ts";
export {
	type AskerMessage,
	FrameBatcher,
	LIMITS,
	LOGS_PROTOCOL,
	type LogLine,
	type LogsRequest,
	type NodeMessage,
	parseAskerMessage,
	parseNodeMessage,
	splitLine,
} from "./protocol.ts";
export { type LogReadOptions, type LogSource, type ServeLogsOptions, serveLogs, streamTask } from "./serve.ts";
