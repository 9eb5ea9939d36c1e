// raft-ts storage: durable (segment log, stable store, file snapshots) and in-memory stores.
export * from "./errors.ts";
export { FileLogStore, type FileLogStoreOptions } from "./file-log.ts";
export { FileSnapshotStore } from "./file-snapshots.ts";
export { FileStableStore } from "./file-stable.ts";
export { ensureDir, writeFileAtomic } from "./fsync.ts";
export { nodeIO, type StorageIO } from "./io.ts";
export { MemLogStore, MemSnapshotStore, MemStableStore } from "./memory.ts";
export type * from "./types.ts";
