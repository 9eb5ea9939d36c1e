// raft-ts: a Raft library shaped like hashicorp/raft, built on a pure etcd-style core.
// See consensus/README.md. This folder imports nothing of tsswarm outside itself.

export { defaultConfig, type Logger, type RaftConfig, silentLogger, validateConfig } from "./config.ts";
export * from "./core/index.ts";
export * from "./errors.ts";
export type { FSM, FSMSnapshot } from "./fsm.ts";
export { type FutureOptions, Raft, type RaftEvents, type RaftState } from "./raft.ts";
export { hasExistingState, type RecoveryResult, recoverCluster } from "./recovery.ts";
export * from "./storage/index.ts";
export * from "./transport/index.ts";
