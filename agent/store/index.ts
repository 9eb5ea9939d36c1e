// agent/store: cluster state as typed tables, replicated by Raft among the managers.
export * from "./errors.ts";
export { StoreFSM } from "./fsm.ts";
export { StoreState, validateTransaction } from "./state.ts";
export { ClusterStore, type ClusterStoreOptions, type StoreEvents, type StoreLogger } from "./store.ts";
export * from "./types.ts";
