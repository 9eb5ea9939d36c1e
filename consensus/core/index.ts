// The pure Raft core: drive it with tick/step/propose, drain it with ready/advance.
export * from "./configuration.ts";
export { RaftLog } from "./log.ts";
export * from "./messages.ts";
export { Progress, type ProgressState } from "./progress.ts";
export { type CoreConfig, defaultCoreConfig, type PersistedState, RaftCore } from "./raft-core.ts";
export type { HardState, ReadState, Ready, RoleName, SoftState } from "./ready.ts";
