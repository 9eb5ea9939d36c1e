// raft-ts transports: in-memory (tests, examples) and libp2p (/tsswarm/raft/1).
export { MemNetwork, MemTransport } from "./memory.ts";
export type * from "./types.ts";
