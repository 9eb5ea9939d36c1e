// The narrow transport interface of raft-ts. The core is message-passing (etcd-io/raft style), so a
// transport only carries opaque, msgpackr-encodable messages between server ids; it never blocks
// the caller and never throws on send: an undeliverable message is dropped (Raft retries) and
// reported through onSendFailure for observability.

export interface TransportHandler<M> {
	/** A message arrived from `from` (a server id), already decoded and size-checked. */
	onMessage(from: string, msg: M): void;
	/** Optional: a send to `to` failed (unreachable, refused, oversized); Raft will retry. */
	onSendFailure?(to: string, err: Error): void;
}

export interface Transport<M = unknown> {
	/** This server's id. */
	readonly localId: string;
	/** This server's address as other servers should dial it. */
	readonly localAddress: string;
	start(handler: TransportHandler<M>, signal?: AbortSignal): Promise<void>;
	/** Fire-and-forget; messages to one peer are delivered in order when they are delivered. */
	send(to: string, address: string, msg: M): void;
	stop(): Promise<void>;
}
