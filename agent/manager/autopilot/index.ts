// agent/manager/autopilot: the leader keeps the voter set (how many, which nodes, zones) by itself.
export {
	AUTOPILOT_DEFAULTS,
	type AutopilotAction,
	type AutopilotSettings,
	type CandidateNode,
	type Decision,
	decide,
	targetVoters,
} from "./decide.ts";
export * from "./errors.ts";
export { Autopilot, type AutopilotOptions, autopilotSettings, raftAddress } from "./loop.ts";
export { type AutopilotUpdate, parseAutopilotUpdate, updateAutopilot } from "./settings.ts";
