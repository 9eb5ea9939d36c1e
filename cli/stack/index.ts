// cli/stack: `tsswarm stack`, compose files deployed as a stack (docker's stack deploy, client-side).
export { type DeployFlags, stackDeploy, stackLs, stackPs, stackRm, stackServicesCmd } from "./commands.ts";
export { type LoadedCompose, type LoadOptions, loadCompose } from "./compose/load.ts";
export { planStack, type StackPlan } from "./convert.ts";
export { deployStack, removeStack, type StackApi } from "./deploy.ts";
export * from "./errors.ts";
export { planObjects } from "./objects.ts";
