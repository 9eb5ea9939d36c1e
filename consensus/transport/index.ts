// raft-ts transports: in-memory (tests, examples) and libp2p (/tsswarm/raft/1).
export { encodeFrame, FrameDecoder, FrameTooLargeError } from "./frame.ts";
export { Libp2pTransport, type Libp2pTransportOptions, RAFT_PROTOCOL } from "./libp2p.ts";
export { MemNetwork, MemTransport } from "./memory.ts";
export { createRaftNode } from "./node.ts";
export type * from "./types.ts";
