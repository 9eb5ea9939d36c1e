// The libp2p host every agent runs: TCP + Noise + Yamux + identify + ping on one port, a
// persistent identity, and request/response protocols framed as length-prefixed msgpackr.
//
// Who may talk to us, in two layers:
// - a libp2p ConnectionGater, checked once Noise has authenticated the remote peer id: members
//   (the allow-list) are admitted; a non-member is refused (NotAMemberPeerError, logged) unless
//   this node admits newcomers (it serves the join protocol). A newcomer is admitted for a short
//   grace period (newcomerGraceMs, default 10 s; at most maxNewcomers at a time): if it is not a
//   member by then — it did not join, or was refused — its connections are closed. We dial a
//   non-member only for a session opened with `stranger: true` (a joiner's first contact).
// - per stream: every protocol is members-only unless registered public (join), so a newcomer
//   can open nothing but the join protocol; identify and ping answer it for the grace period only.
// Every served stream has an idle deadline (streamIdleMs): a peer that stalls mid-frame or sends
// nothing is cut off (StreamIdleError). Garbage, oversized and truncated frames, and unknown
// versions of our protocols (ProtocolVersionError), are refused and logged with peer and protocol.

import { EventEmitter } from "node:events";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { type GossipSub, gossipsub, TopicValidatorResult } from "@libp2p/gossipsub";
import { identify } from "@libp2p/identify";
import type { ConnectionGater, Ed25519PrivateKey, Libp2p, PeerId, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";
import { pack, unpack } from "msgpackr";
import { encodeFrame, FrameDecoder, FrameTooLargeError } from "../../consensus/index.ts";
import {
	BadMessageError,
	NotAMemberPeerError,
	ProtocolVersionError,
	StreamIdleError,
	TruncatedFrameError,
} from "../errors.ts";
import type { AllowList } from "./allowlist.ts";
import { loadOrCreateNodeKey } from "./key.ts";

export interface Logger {
	info(obj: object, msg?: string): void;
	warn(obj: object, msg?: string): void;
}

/** The default (and only) port: libp2p on TCP, membership on UDP. */
export const DEFAULT_PORT = 2377;

export interface HostOptions {
	dataDir: string;
	/** e.g. ["/ip4/198.18.0.1/tcp/2377"] */
	listen: string[];
	announce?: string[];
	allowList: AllowList;
	logger?: Logger;
	maxFrameBytes?: number;
	/** Admit non-members for newcomerGraceMs so they can use the join protocol (default false). */
	admitNewcomers?: boolean | (() => boolean);
	newcomerGraceMs?: number;
	maxNewcomers?: number;
	/** A served stream that completes no frame for this long is closed (default 30 s). */
	streamIdleMs?: number;
}

export interface HostEvents {
	/** Input refused: a connection (protocol "connection"), a stream, or a frame. */
	refused: [{ peer: string; protocol: string; error: Error & { code?: string } }];
}

export type Handler = (msg: unknown, ctx: HandlerContext) => void | Promise<void>;

/** A served stream as its handler sees it. */
export interface HandlerContext {
	peer: string;
	/** One bounded frame. */
	send(reply: unknown): void;
	/** Resolves once the stream's write buffer has room (at once if it has); rejects once it is gone. */
	drain(): Promise<void>;
	close(): void;
	/** Aborted when the stream ends, whoever ends it (a handler that streams stops on it). */
	signal: AbortSignal;
}

const quiet: Logger = { info() {}, warn() {} };

/** Admission of peers: the gater's state, shared with the Host once libp2p exists. */
class Admission {
	readonly o: HostOptions;
	node?: Libp2p;
	/** Newcomers admitted for their grace period. */
	readonly newcomers = new Map<string, NodeJS.Timeout>();
	/** Sessions opened with `stranger: true` that are dialing now. */
	strangerDials = 0;
	refuse: (peer: string, protocol: string, error: Error & { code?: string }) => void = () => {};

	constructor(o: HostOptions) {
		this.o = o;
	}

	denyInbound(peerId: PeerId): boolean {
		const peer = peerId.toString();
		if (this.o.allowList.has(peer) || this.newcomers.has(peer)) return false;
		const admit = typeof this.o.admitNewcomers === "function" ? this.o.admitNewcomers() : this.o.admitNewcomers;
		if (admit && this.newcomers.size < (this.o.maxNewcomers ?? 32)) {
			const t = setTimeout(() => {
				this.newcomers.delete(peer);
				if (this.o.allowList.has(peer)) return;
				this.o.logger?.info({ peer }, "newcomer did not join within its grace period; closing its connections");
				void this.node?.hangUp(peerId).catch(() => {});
			}, this.o.newcomerGraceMs ?? 10_000);
			t.unref();
			this.newcomers.set(peer, t);
			return false;
		}
		this.refuse(peer, "connection", new NotAMemberPeerError(peer, "this node (inbound connection)"));
		return true;
	}

	denyOutbound(peerId: PeerId): boolean {
		const peer = peerId.toString();
		if (this.o.allowList.has(peer) || this.strangerDials > 0) return false;
		this.refuse(peer, "connection", new NotAMemberPeerError(peer, "this node (outbound connection)"));
		return true;
	}

	gater(): ConnectionGater {
		return {
			denyInboundEncryptedConnection: (p) => this.denyInbound(p),
			denyOutboundEncryptedConnection: (p) => this.denyOutbound(p),
			// A newcomer's grace ends: the connection upgrade is checked again (identify re-dials etc.).
			denyInboundUpgradedConnection: (p) => this.denyInbound(p),
		};
	}

	stop(): void {
		for (const t of this.newcomers.values()) clearTimeout(t);
		this.newcomers.clear();
	}
}

/**
 * `/ip4/A/tcp/P` from an IPv4:PORT or a multiaddr (its /p2p/ suffix, if any, must name `id`);
 * undefined for anything else.
 */
export function tcpAddr(a: string, id: string): string | undefined {
	const hp = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(a);
	if (hp) return `/ip4/${hp[1]}/tcp/${hp[2]}`;
	const ma = /^(\/ip4\/\d{1,3}(?:\.\d{1,3}){3}\/tcp\/\d{1,5})(?:\/p2p\/([A-Za-z0-9]+))?$/.exec(a);
	if (!ma || (ma[2] !== undefined && ma[2] !== id)) return undefined;
	return ma[1];
}

/** `/tsswarm/NAME/N` -> [family, N]. */
function versionOf(protocol: string): [string, number] | undefined {
	const m = /^(.*)\/(\d+)$/.exec(protocol);
	return m ? [m[1]!, Number(m[2])] : undefined;
}

export class Host extends EventEmitter<HostEvents> {
	readonly node: Libp2p;
	/** The node key (its peer id's): Noise proves it on every connection; membership signs with it. */
	readonly privateKey: Ed25519PrivateKey;
	readonly allowList: AllowList;
	private readonly log: Logger;
	private readonly max: number;
	private readonly idleMs: number;
	private readonly admission: Admission;

	private constructor(node: Libp2p, o: HostOptions, admission: Admission, privateKey: Ed25519PrivateKey) {
		super();
		this.node = node;
		this.privateKey = privateKey;
		this.allowList = o.allowList;
		this.log = o.logger ?? quiet;
		this.max = o.maxFrameBytes ?? 4 << 20;
		this.idleMs = o.streamIdleMs ?? 30_000;
		this.admission = admission;
		admission.node = node;
		admission.refuse = (peer, protocol, error) => this.refused(peer, protocol, error);
	}

	/** Log a refusal with peer, protocol and the error's code, and emit it as "refused". */
	refused(peer: string, protocol: string, error: Error & { code?: string }): void {
		this.log.warn({ peer, protocol, code: error.code, err: error.message }, "refused");
		this.emit("refused", { peer, protocol, error });
	}

	static async create(o: HostOptions): Promise<Host> {
		const privateKey = await loadOrCreateNodeKey(o.dataDir);
		const admission = new Admission(o);
		const node = await createLibp2p({
			privateKey,
			connectionGater: admission.gater(),
			// Membership is this peer store's routing: learnAddrs replaces a member's addresses when
			// it says it moved. libp2p's default hides addresses after an hour for good (adding one
			// again keeps its first-seen time), which would leave a long-lived cluster's members
			// undialable by id once their connections drop.
			peerStore: { maxAddressAge: Number.POSITIVE_INFINITY },
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
		return new Host(node, o, admission, privateKey);
	}

	get peerId(): string {
		return this.node.peerId.toString();
	}

	addrs(): string[] {
		return this.node.getMultiaddrs().map((m) => m.toString());
	}

	/**
	 * Serve a request/response protocol; frames in both directions are bounded msgpackr. Other
	 * versions of it (`/NAME/1` .. `/NAME/N+3`) are answered with ProtocolVersionError, logged.
	 */
	async handle(protocol: string, handler: Handler, o: { public?: boolean } = {}): Promise<void> {
		await this.node.handle(protocol, (stream, connection) => {
			const peer = connection.remotePeer.toString();
			if (!o.public && !this.allowList.has(peer)) {
				const err = new NotAMemberPeerError(peer, protocol);
				this.refused(peer, protocol, err);
				stream.abort(err);
				return;
			}
			this.serve(stream, peer, protocol, handler);
		});
		const v = versionOf(protocol);
		if (!v) return;
		const others = [...Array(v[1] + 3).keys()].map((i) => i + 1).filter((n) => n !== v[1]);
		await this.node.handle(
			others.map((n) => `${v[0]}/${n}`),
			(stream, connection) => {
				const peer = connection.remotePeer.toString();
				const err = new ProtocolVersionError(stream.protocol ?? `${v[0]}/?`, protocol);
				this.refused(peer, stream.protocol ?? v[0], err);
				// Tell a member why (one bounded frame); a stranger gets just the reset.
				if (this.allowList.has(peer) || o.public) {
					stream.send(encodeFrame({ t: "error", code: err.code, message: err.message }, this.max));
					void stream.close().catch(() => stream.abort(err));
				} else stream.abort(err);
			},
		);
	}

	/** Stop serving a protocol registered with handle(), and the version answers beside it. */
	async unhandle(protocol: string): Promise<void> {
		const v = versionOf(protocol);
		const all = v ? [...Array(v[1] + 3).keys()].map((i) => `${v[0]}/${i + 1}`) : [protocol];
		await this.node.unhandle(all).catch(() => {});
	}

	private serve(stream: Stream, peer: string, protocol: string, handler: Handler): void {
		const decoder = new FrameDecoder(this.max);
		let done = false;
		const ended = new AbortController();
		const fail = (err: Error & { code?: string }) => {
			if (done) return;
			done = true;
			clearTimeout(idle);
			this.refused(peer, protocol, err);
			stream.abort(err);
			ended.abort(err);
		};
		// The deadline runs while we wait for a complete frame; a handler at work does not count.
		let idle: NodeJS.Timeout | undefined;
		const rearm = () => {
			clearTimeout(idle);
			if (done) return;
			idle = setTimeout(() => fail(new StreamIdleError(protocol, this.idleMs)), this.idleMs);
			idle.unref();
		};
		rearm();
		const ctx: HandlerContext = {
			peer,
			send: (reply: unknown) => {
				stream.send(encodeFrame(reply, this.max));
			},
			drain: () => (stream.writableNeedsDrain ? stream.onDrain({ signal: ended.signal }) : Promise.resolve()),
			close: () => {
				done = true;
				clearTimeout(idle);
				void stream.close().catch(() => {});
			},
			signal: ended.signal,
		};
		stream.addEventListener("message", (evt) => {
			if (done) return;
			let frames: unknown[];
			try {
				frames = decoder.push(evt.data.subarray());
			} catch (err) {
				fail(err as Error);
				return;
			}
			if (frames.length > 0) rearm();
			for (const f of frames) {
				Promise.resolve(handler(f, ctx)).catch((err: Error) => fail(err));
			}
		});
		stream.addEventListener("remoteCloseWrite", () => {
			if (decoder.pending() > 0) fail(new TruncatedFrameError(protocol, decoder.pending()));
		});
		stream.addEventListener("close", () => {
			done = true;
			clearTimeout(idle);
			ended.abort(new Error(`${protocol}: the stream closed`));
		});
	}

	/**
	 * Where `id` is now (membership's signed statement, which carries the node's advertised
	 * multiaddrs): replaces what the peer store knew, so a node that came back on a new address is
	 * dialed there, not at the old one. Addresses of another peer (a /p2p/ suffix naming someone
	 * else) or not TCP/IPv4 are dropped; true when the peer store changed.
	 */
	async learnAddrs(id: string, addrs: readonly string[]): Promise<boolean> {
		const peerId = peerIdFromString(id);
		const next = addrs.flatMap((a) => tcpAddr(a, id) ?? []);
		if (next.length === 0) return false;
		const known = await this.knownAddrs(peerId);
		if (known.length === next.length && next.every((a) => known.includes(a))) return false;
		await this.node.peerStore.patch(peerId, { multiaddrs: next.map((a) => multiaddr(a)) });
		return true;
	}

	private async knownAddrs(peerId: PeerId): Promise<string[]> {
		if (!(await this.node.peerStore.has(peerId))) return [];
		return (await this.node.peerStore.get(peerId)).addresses.map((a) => a.multiaddr.toString());
	}

	/**
	 * Open a stream, then exchange frames: `talk` sends with send() and awaits replies with next().
	 * `to` is a member's peer id (dialed at the addresses the peer store has for it, kept fresh by
	 * membership; `hint`, an IPv4:PORT or multiaddr such as the directory's, is dialed only when it
	 * has none), or a multiaddr (a joiner's first contact, which has no peer id yet).
	 */
	async session<T>(
		to: string,
		protocol: string,
		talk: (io: { send(msg: unknown): void; next(): Promise<unknown>; peer: string }) => Promise<T>,
		o: { timeoutMs?: number; signal?: AbortSignal; stranger?: boolean; hint?: string } = {},
	): Promise<T> {
		const signal = AbortSignal.any([AbortSignal.timeout(o.timeoutMs ?? 10_000), ...(o.signal ? [o.signal] : [])]);
		// A joiner's first contact is not a member yet: let the gater admit this one dial.
		if (o.stranger) this.admission.strangerDials++;
		let conn: Awaited<ReturnType<Libp2p["dial"]>>;
		try {
			conn = await this.node.dial(to.startsWith("/") ? multiaddr(to) : await this.peerTarget(to, o.hint), { signal });
		} finally {
			if (o.stranger) this.admission.strangerDials--;
		}
		let stream: Stream;
		try {
			stream = await conn.newStream(protocol, { signal });
		} catch (err) {
			if ((err as Error).name === "UnsupportedProtocolError") throw new ProtocolVersionError(protocol);
			throw err;
		}
		const peer = conn.remotePeer.toString();
		const decoder = new FrameDecoder(this.max);
		const inbox: unknown[] = [];
		let waiter: ((v: unknown) => void) | undefined;
		let failure: Error | undefined;
		let failWaiter: ((e: Error) => void) | undefined;
		stream.addEventListener("message", (evt) => {
			try {
				for (const f of decoder.push(evt.data.subarray())) {
					const e = f as { t?: unknown; code?: unknown; message?: unknown };
					if (e?.t === "error" && e.code === "ERR_PROTOCOL_VERSION") {
						failure = new ProtocolVersionError(protocol);
						failWaiter?.(failure);
						continue;
					}
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
			// An aborted session resets its stream: the peer's handler learns at once (its ctx.signal).
			if (signal.aborted) stream.abort(new Error(`${protocol}: session aborted`));
			else await stream.close().catch(() => stream.abort(new Error("closed")));
		}
	}

	/** A member by id; its hint is dialed only when there is no connection and no known address. */
	private async peerTarget(id: string, hint: string | undefined): Promise<PeerId | Multiaddr> {
		const peerId = peerIdFromString(id);
		const h = hint === undefined ? undefined : tcpAddr(hint, id);
		if (!h || this.node.getConnections(peerId).length > 0 || (await this.knownAddrs(peerId)).length > 0) return peerId;
		return multiaddr(`${h}/p2p/${id}`);
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
			const from = peer.toString();
			const err = !origin
				? new BadMessageError(topic, "unsigned broadcast")
				: !this.allowList.has(origin)
					? new NotAMemberPeerError(origin, topic)
					: !this.allowList.has(from)
						? new NotAMemberPeerError(from, topic)
						: m.data.length > this.max
							? new FrameTooLargeError(m.data.length, this.max)
							: undefined;
			if (err) {
				this.refused(from, topic, err);
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
				this.refused(
					m.from.toString(),
					topic,
					new BadMessageError(topic, `undecodable broadcast (${(err as Error).message})`),
				);
				return;
			}
			onMessage(msg, m.from.toString());
		});
		ps.subscribe(topic);
	}

	/** Publish raw bytes, unchecked (tests of the receivers' checks). */
	async publishRaw(topic: string, data: Uint8Array): Promise<number> {
		return (await this.pubsub.publish(topic, data)).recipients.length;
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
		this.admission.stop();
		await this.node.stop();
	}
}
