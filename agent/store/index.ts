// agent/store: cluster state as typed tables, replicated by Raft among the managers.
export * from "./errors.ts";
export { StoreFSM, type StoreFSMOptions } from "./fsm.ts";
export * from "./objects.ts";
export * as check from "./schema.ts";
export { type ApplyResult, StoreState, validateTransaction } from "./state.ts";
export { ClusterStore, type ClusterStoreOptions, type StoreEvents, type StoreLogger } from "./store.ts";
export { TABLE_DEFS, type TableDef } from "./tables.ts";
export * from "./types.ts";
export { ChangeFeed, type WatchOptions, type WatchSelector } from "./watch.ts";
