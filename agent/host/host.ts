// The libp2p host every agent runs: TCP + Noise + Yamux + identify + ping on one port, a
// persistent identity, and request/response protocols framed as length-prefixed msgpackr.
// Protocols are members-only unless registered public (the join protocol): a non-member's stream
// on any other protocol is closed with NotAMemberPeerError, logged with the peer.
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import type { Libp2p, Stream } from "@libp2p/interface";
import { ping } from "@libp2p/ping";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";
import { encodeFrame, FrameDecoder } from "../../consensus/index.ts";
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
			services: { identify: identify(), ping: ping() },
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

	async stop(): Promise<void> {
		await this.node.stop();
	}
}
