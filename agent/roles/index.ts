// agent/roles: this node runs the role its record gives it (autopilot's promotions and demotions).
export { RoleController, type RoleControllerOptions, type RoleLogger } from "./controller.ts";
export * from "./errors.ts";
export { type ProbedRole, probeRecordRole } from "./probe.ts";
