// raft-ts: a Raft library shaped like hashicorp/raft, built on a pure etcd-style core.
// See consensus/README.md. This folder imports nothing of tsswarm outside itself.
export * from "./core/index.ts";
export * from "./errors.ts";
export * from "./storage/index.ts";
export type * from "./transport/types.ts";
