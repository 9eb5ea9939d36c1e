// Raft over libp2p: the stream protocol /tsswarm/raft/1 on a node the caller owns. One long-lived
// outbound stream per peer carries frames in order; every frame names the cluster, and frames from
// another cluster, oversized or undecodable ones end that stream with a named error logged with
// the peer. An optional authorize hook decides which peers may use the protocol at all (the
// protocol is registered on libp2p directly, outside any host-level stream check). Server ids are
// peer ids; addresses are multiaddrs (…/p2p/<peer id>), hints only: peers are dialed by id.
import type { Connection, Libp2p, PeerId, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";
import { type Logger, silentLogger } from "../config.ts";
import { UnauthorizedPeerError, WrongClusterError } from "../errors.ts";
import { encodeFrame, FrameDecoder } from "./frame.ts";
import type { Transport, TransportHandler } from "./types.ts";

export const RAFT_PROTOCOL = "/tsswarm/raft/1";

export interface Libp2pTransportOptions {
	node: Libp2p;
	clusterId: string;
	maxFrameBytes?: number;
	logger?: Logger;
	/**
	 * May `peerId` (the remote peer id, as a string) use `protocol` (RAFT_PROTOCOL)? Asked when an
	 * inbound stream opens and again before each chunk of it is decoded, so a revoked peer is cut
	 * off at its next frame; keep it O(1). false (or a throw) resets the stream with
	 * UnauthorizedPeerError, logged with the peer and counted in counters.unauthorized. Without a
	 * hook every peer may send: the Raft core still takes messages only from servers of its
	 * latest configuration (and the exceptions the transport cannot see, e.g. the leader adding us).
	 */
	authorize?: (peerId: string, protocol: string) => boolean;
}

interface Outbound {
	stream?: Stream;
	opening?: Promise<Stream | undefined>;
	queue: Uint8Array[];
}

export class Libp2pTransport implements Transport {
	readonly localId: string;
	readonly localAddress: string;
	private readonly node: Libp2p;
	private readonly clusterId: string;
	private readonly max: number;
	private readonly log: Logger;
	private readonly authorize: ((peerId: string, protocol: string) => boolean) | undefined;
	private handler: TransportHandler<unknown> | undefined;
	private out = new Map<string, Outbound>();
	private inbound = new Set<Stream>();
	private running = false;
	/** Counters for tests and stats. */
	readonly counters = { sent: 0, received: 0, refused: 0, unauthorized: 0, reconnects: 0, truncated: 0 };

	constructor(o: Libp2pTransportOptions) {
		this.node = o.node;
		this.clusterId = o.clusterId;
		this.max = o.maxFrameBytes ?? 16 << 20;
		this.log = o.logger ?? silentLogger;
		this.authorize = o.authorize;
		this.localId = o.node.peerId.toString();
		this.localAddress = o.node.getMultiaddrs()[0]?.toString() ?? "";
	}

	async start(handler: TransportHandler<unknown>): Promise<void> {
		this.handler = handler;
		this.running = true;
		await this.node.handle(RAFT_PROTOCOL, (stream, connection) => this.onInbound(stream, connection), {
			maxInboundStreams: 64,
		});
	}

	private allowed(peer: string): boolean {
		if (!this.authorize) return true;
		try {
			return this.authorize(peer, RAFT_PROTOCOL) === true;
		} catch (err) {
			this.log.warn({ peer, protocol: RAFT_PROTOCOL, err: (err as Error).message }, "raft authorize hook threw");
			return false;
		}
	}

	private onInbound(stream: Stream, connection: Connection): void {
		const peer = connection.remotePeer.toString();
		let ended = false;
		const reset = (err: Error, what: string) => {
			ended = true;
			this.log.warn(
				{ peer, protocol: RAFT_PROTOCOL, error: err.name, code: (err as { code?: string }).code, err: err.message },
				what,
			);
			stream.abort(err);
		};
		const unauthorized = () => {
			this.counters.unauthorized++;
			reset(new UnauthorizedPeerError(peer, RAFT_PROTOCOL), "raft stream refused");
		};
		if (!this.allowed(peer)) {
			unauthorized();
			return;
		}
		this.inbound.add(stream);
		const decoder = new FrameDecoder(this.max);
		const refuse = (err: Error) => {
			this.counters.refused++;
			reset(err, "raft frame refused");
		};
		stream.addEventListener("message", (evt) => {
			if (ended) return;
			if (!this.allowed(peer)) {
				unauthorized();
				return;
			}
			let frames: unknown[];
			try {
				frames = decoder.push(evt.data.subarray());
			} catch (err) {
				refuse(err as Error);
				return;
			}
			for (const f of frames) {
				const frame = f as { c?: unknown; m?: unknown };
				if (frame?.c !== this.clusterId) {
					refuse(new WrongClusterError(String(frame?.c), this.clusterId));
					return;
				}
				this.counters.received++;
				this.handler?.onMessage(peer, frame.m);
			}
		});
		stream.addEventListener("close", () => {
			this.inbound.delete(stream);
			if (decoder.pending() > 0) {
				this.counters.truncated++;
				this.log.warn({ peer, protocol: RAFT_PROTOCOL, bytes: decoder.pending() }, "raft stream ended inside a frame");
			}
		});
	}

	send(to: string, address: string, msg: unknown): void {
		if (!this.running) return;
		let frame: Uint8Array;
		try {
			frame = encodeFrame({ c: this.clusterId, m: msg }, this.max);
		} catch (err) {
			this.handler?.onSendFailure?.(to, err as Error);
			return;
		}
		let o = this.out.get(to);
		if (!o) {
			o = { queue: [] };
			this.out.set(to, o);
		}
		if (o.stream && o.stream.status === "open") {
			this.write(to, o, frame);
			return;
		}
		// Bounded queue while (re)connecting: Raft retries, so old messages may be dropped.
		if (o.queue.length < 1024) o.queue.push(frame);
		if (!o.opening) o.opening = this.open(to, address, o);
	}

	private write(to: string, o: Outbound, frame: Uint8Array): void {
		try {
			o.stream!.send(frame);
			this.counters.sent++;
		} catch (err) {
			o.stream = undefined;
			this.handler?.onSendFailure?.(to, err as Error);
		}
	}

	private async open(to: string, address: string, o: Outbound): Promise<Stream | undefined> {
		try {
			const target = await this.target(to, address);
			const stream = await this.node.dialProtocol(target, RAFT_PROTOCOL, { signal: AbortSignal.timeout(5000) });
			if (!this.running) {
				stream.abort(new Error("transport stopped"));
				return undefined;
			}
			if (o.stream) this.counters.reconnects++;
			o.stream = stream;
			stream.addEventListener("close", () => {
				if (o.stream === stream) o.stream = undefined;
			});
			const queued = o.queue.splice(0);
			for (const f of queued) this.write(to, o, f);
			return stream;
		} catch (err) {
			o.queue.length = 0;
			this.handler?.onSendFailure?.(to, err as Error);
			return undefined;
		} finally {
			o.opening = undefined;
		}
	}

	/**
	 * Servers are dialed by peer id, never by the configuration's address: a node that came back on
	 * a new address is found where the peer store (kept by its owner, e.g. from membership) says,
	 * and an open connection (one the peer opened to us) is reused. The address is a hint, dialed
	 * only when the peer store knows no address of the peer (libp2p hides addresses older than its
	 * maxAddressAge, and adding one again does not make it fresh); a bare peer id (a server not
	 * yet in our configuration, e.g. a new voter answering its leader) is no hint.
	 */
	private async target(to: string, address: string): Promise<PeerId | Multiaddr> {
		const ma = address.startsWith("/") ? multiaddr(address) : undefined;
		const id = ma?.getComponents().find((c) => c.name === "p2p")?.value ?? to;
		const peerId = peerIdFromString(id);
		if (!ma || this.node.getConnections(peerId).length > 0) return peerId;
		const store = this.node.peerStore;
		const known = (await store.has(peerId)) ? (await store.get(peerId)).addresses.length : 0;
		if (known > 0) return peerId;
		return ma.getComponents().some((c) => c.name === "p2p") ? ma : ma.encapsulate(`/p2p/${id}`);
	}

	async stop(): Promise<void> {
		this.running = false;
		await this.node.unhandle(RAFT_PROTOCOL).catch(() => {});
		for (const o of this.out.values()) o.stream?.abort(new Error("transport stopped"));
		for (const s of this.inbound) s.abort(new Error("transport stopped"));
		this.out.clear();
		this.inbound.clear();
	}
}
