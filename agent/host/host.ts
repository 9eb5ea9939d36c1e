// The libp2p host every agent runs: TCP + Noise + Yamux + identify + ping on one port, a
// persistent identity, and request/response protocols framed as length-prefixed msgpackr.
// Protocols are members-only unless registered public (the join protocol): a non-member's stream
// on any other protocol is closed with NotAMemberPeerError, logged with the peer.
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { type GossipSub, gossipsub, TopicValidatorResult } from "@libp2p/gossipsub";
import { identify } from "@libp2p/identify";
import type { Libp2p, Stream } from "@libp2p/interface";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";
import { pack, unpack } from "msgpackr";
import { encodeFrame, FrameDecoder, FrameTooLargeError } from "../../consensus/index.ts";
import { NotAMemberPeerError } from "../errors.ts";
import type { AllowList } from "./allowlist.ts";
import { loadOrCreateNodeKey } from "./key.ts";

export interface Logger {
	info(obj: object, msg?: string): void;
	warn(obj: object, msg?: string): void;
}

export interface HostOptions {
	dataDir: string;
	/** e.g. ["/ip4/198.18.0.1/tcp/2377"] */
	listen: string[];
	announce?: string[];
	allowList: AllowList;
	logger?: Logger;
	maxFrameBytes?: number;
}

export type Handler = (
	msg: unknown,
	ctx: { peer: string; send(reply: unknown): void; close(): void },
) => void | Promise<void>;

const quiet: Logger = { info() {}, warn() {} };

export class Host {
	readonly node: Libp2p;
	readonly allowList: AllowList;
	private readonly log: Logger;
	private readonly max: number;

	private constructor(node: Libp2p, o: HostOptions) {
		this.node = node;
		this.allowList = o.allowList;
		this.log = o.logger ?? quiet;
		this.max = o.maxFrameBytes ?? 4 << 20;
	}

	static async create(o: HostOptions): Promise<Host> {
		const privateKey = await loadOrCreateNodeKey(o.dataDir);
		const node = await createLibp2p({
			privateKey,
			addresses: { listen: o.listen, announce: o.announce },
			transports: [tcp()],
			connectionEncrypters: [noise()],
			streamMuxers: [yamux()],
			services: {
				identify: identify(),
				ping: ping(),
				// Cluster-wide broadcast. Messages are signed by the sender's node key (StrictSign) and
				// bounded; only members' messages are delivered or forwarded (see broadcast topics).
				pubsub: gossipsub({
					allowPublishToZeroTopicPeers: true,
					emitSelf: false,
					maxInboundDataLength: (o.maxFrameBytes ?? 4 << 20) + 4096,
					// Non-members may connect (to join) but must never see or relay a broadcast: their
					// score puts them under every threshold, so they get no mesh slot, no gossip, no
					// published message, and their RPCs are ignored.
					scoreParams: { appSpecificScore: (p) => (o.allowList.has(p) ? 0 : -1000), appSpecificWeight: 1 },
					scoreThresholds: { gossipThreshold: -10, publishThreshold: -50, graylistThreshold: -80 },
				}),
			},
		});
		return new Host(node, o);
	}

	get peerId(): string {
		return this.node.peerId.toString();
	}

	addrs(): string[] {
		return this.node.getMultiaddrs().map((m) => m.toString());
	}

	/** Serve a request/response protocol; frames in both directions are bounded msgpackr. */
	async handle(protocol: string, handler: Handler, o: { public?: boolean } = {}): Promise<void> {
		await this.node.handle(protocol, (stream, connection) => {
			const peer = connection.remotePeer.toString();
			if (!o.public && !this.allowList.has(peer)) {
				const err = new NotAMemberPeerError(peer, protocol);
				this.log.warn({ peer, protocol, code: err.code }, err.message);
				stream.abort(err);
				return;
			}
			this.serve(stream, peer, protocol, handler);
		});
	}

	private serve(stream: Stream, peer: string, protocol: string, handler: Handler): void {
		const decoder = new FrameDecoder(this.max);
		const ctx = {
			peer,
			send: (reply: unknown) => {
				stream.send(encodeFrame(reply, this.max));
			},
			close: () => void stream.close().catch(() => {}),
		};
		stream.addEventListener("message", (evt) => {
			let frames: unknown[];
			try {
				frames = decoder.push(evt.data.subarray());
			} catch (err) {
				this.log.warn({ peer, protocol, err: (err as Error).message }, "bad frame; closing the stream");
				stream.abort(err as Error);
				return;
			}
			for (const f of frames) {
				Promise.resolve(handler(f, ctx)).catch((err: Error) => {
					this.log.warn({ peer, protocol, err: err.message }, "handler failed; closing the stream");
					stream.abort(err);
				});
			}
		});
	}

	/** Open a stream to addr, then exchange frames: `talk` sends with send() and awaits replies with next(). */
	async session<T>(
		addr: string,
		protocol: string,
		talk: (io: { send(msg: unknown): void; next(): Promise<unknown>; peer: string }) => Promise<T>,
		o: { timeoutMs?: number; signal?: AbortSignal } = {},
	): Promise<T> {
		const signal = AbortSignal.any([AbortSignal.timeout(o.timeoutMs ?? 10_000), ...(o.signal ? [o.signal] : [])]);
		const conn = await this.node.dial(multiaddr(addr), { signal });
		const stream = await conn.newStream(protocol, { signal });
		const peer = conn.remotePeer.toString();
		const decoder = new FrameDecoder(this.max);
		const inbox: unknown[] = [];
		let waiter: ((v: unknown) => void) | undefined;
		let failure: Error | undefined;
		let failWaiter: ((e: Error) => void) | undefined;
		stream.addEventListener("message", (evt) => {
			try {
				for (const f of decoder.push(evt.data.subarray())) {
					if (waiter) {
						const w = waiter;
						waiter = undefined;
						w(f);
					} else inbox.push(f);
				}
			} catch (err) {
				failure = err as Error;
				failWaiter?.(failure);
			}
		});
		stream.addEventListener("close", () => {
			failure ??= new Error(`${protocol}: the peer closed the stream`);
			failWaiter?.(failure);
		});
		signal.addEventListener("abort", () => {
			failure ??= new Error(`${protocol}: timed out`);
			failWaiter?.(failure);
		});
		try {
			return await talk({
				peer,
				send: (msg) => stream.send(encodeFrame(msg, this.max)),
				next: () =>
					inbox.length > 0
						? Promise.resolve(inbox.shift())
						: failure
							? Promise.reject(failure)
							: new Promise((resolve, reject) => {
									waiter = resolve;
									failWaiter = reject;
								}),
			});
		} finally {
			await stream.close().catch(() => stream.abort(new Error("closed")));
		}
	}

	private get pubsub(): GossipSub {
		return (this.node.services as { pubsub: GossipSub }).pubsub;
	}

	/**
	 * Receive a broadcast topic: messages are msgpackr, from members only (checked on the signed
	 * origin and on the forwarding peer), within the frame bound; anything else is rejected,
	 * logged, and not forwarded.
	 */
	subscribe(topic: string, onMessage: (msg: unknown, from: string) => void): void {
		const ps = this.pubsub;
		ps.topicValidators.set(topic, (peer, m) => {
			const origin = m.type === "signed" ? m.from.toString() : undefined;
			const why = !origin
				? "unsigned"
				: !this.allowList.has(origin) || !this.allowList.has(peer.toString())
					? "not from a member"
					: m.data.length > this.max
						? `over ${this.max} bytes`
						: undefined;
			if (why) {
				this.log.warn({ peer: peer.toString(), origin, topic }, `broadcast refused: ${why}`);
				return TopicValidatorResult.Reject;
			}
			return TopicValidatorResult.Accept;
		});
		ps.addEventListener("message", (evt) => {
			const m = evt.detail;
			if (m.topic !== topic || m.type !== "signed") return;
			let msg: unknown;
			try {
				msg = unpack(m.data);
			} catch (err) {
				this.log.warn({ origin: m.from.toString(), topic, err: (err as Error).message }, "undecodable broadcast");
				return;
			}
			onMessage(msg, m.from.toString());
		});
		ps.subscribe(topic);
	}

	/** Publish to the members subscribed to the topic (best effort); resolves with how many peers it went to. */
	async broadcast(topic: string, msg: unknown): Promise<number> {
		const data = pack(msg);
		if (data.length > this.max) throw new FrameTooLargeError(data.length, this.max);
		const r = await this.pubsub.publish(topic, data);
		return r.recipients.length;
	}

	/** Peers known to be subscribed to the topic (for tests and stats). */
	topicPeers(topic: string): string[] {
		return this.pubsub.getSubscribers(topic).map((p) => p.toString());
	}

	/**
	 * Peers this node forwards the topic's messages to. Gossipsub builds its mesh on heartbeats
	 * (1 s): a message published before then may not be relayed. Broadcast is best effort; state
	 * that must arrive goes through membership's push-pull or the Raft store.
	 */
	meshPeers(topic: string): string[] {
		// On the implementation, not on the exported interface.
		const ps = this.pubsub as unknown as { getMeshPeers(topic: string): Array<{ toString(): string }> };
		return ps.getMeshPeers(topic).map((p) => p.toString());
	}

	async stop(): Promise<void> {
		await this.node.stop();
	}
}
