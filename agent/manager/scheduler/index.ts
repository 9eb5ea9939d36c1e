// agent/manager/scheduler: where tasks run. A pipeline of filters that explain their refusals,
// then a spread over placement preferences and nodes; pure (no store, no I/O), fed structural types.
export {
	type Constraint,
	type ConstraintField,
	type ConstraintOperator,
	constraintMatches,
	nodeMatches,
	parseConstraint,
	parseConstraints,
} from "./constraint.ts";
export * from "./errors.ts";
export {
	AvailabilityFilter,
	ConstraintFilter,
	defaultFilters,
	type Filter,
	HostPortFilter,
	MaxReplicasFilter,
	PlatformFilter,
	ReadyFilter,
	ResourceFilter,
} from "./filters.ts";
export { NodeInfo, NodeSet } from "./node-info.ts";
export { Pipeline } from "./pipeline.ts";
export { formatPlatform, type NormalPlatform, normalizePlatform, platformSatisfies } from "./platform.ts";
export { type ScheduleOptions, type ScheduleResult, schedule } from "./scheduler.ts";
export { SpreadTree, spreadValue } from "./spread.ts";
export type * from "./types.ts";
export { validatePlacement } from "./validate.ts";
