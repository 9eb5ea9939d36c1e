// An in-memory transport for tests and examples: messages go through msgpackr like on the wire,
// are delivered asynchronously and in order per link, and links can be cut or slowed.
import { pack, unpack } from "msgpackr";
import type { Transport, TransportHandler } from "./types.ts";

export class MemNetwork {
	private readonly nodes = new Map<string, MemTransport>();
	private readonly cut = new Set<string>();
	/** Delivery delay in ms (0 = next macrotask). */
	delayMs = 0;
	/** Like a real transport's frame bound: larger messages fail to send. */
	maxMessageBytes = Number.POSITIVE_INFINITY;
	/** Tests: rewrite (or drop, by returning undefined) a message in flight. */
	tamper: ((from: string, to: string, msg: unknown) => unknown) | undefined;

	transport(id: string): MemTransport {
		const tr = new MemTransport(this, id);
		this.nodes.set(id, tr);
		return tr;
	}

	/** Cut `a`'s links to `others` (both directions unless oneWay). */
	partition(a: string, others: string[], oneWay = false): void {
		for (const b of others) {
			this.cut.add(`${a}>${b}`);
			if (!oneWay) this.cut.add(`${b}>${a}`);
		}
	}

	isolate(a: string): void {
		this.partition(
			a,
			[...this.nodes.keys()].filter((b) => b !== a),
		);
	}

	heal(): void {
		this.cut.clear();
	}

	deliver(from: string, to: string, bytes: Uint8Array): boolean {
		if (this.cut.has(`${from}>${to}`)) return false;
		const target = this.nodes.get(to);
		if (!target?.running) return false;
		// setTimeout(0) waits at least 1 ms in Node; an immediate keeps in-memory hops cheap.
		if (this.delayMs > 0) setTimeout(() => target.receive(from, bytes), this.delayMs);
		else setImmediate(() => target.receive(from, bytes));
		return true;
	}
}

export class MemTransport implements Transport {
	readonly localId: string;
	readonly localAddress: string;
	running = false;
	private handler: TransportHandler<unknown> | undefined;
	private readonly net: MemNetwork;

	constructor(net: MemNetwork, id: string) {
		this.net = net;
		this.localId = id;
		this.localAddress = `mem://${id}`;
	}

	async start(handler: TransportHandler<unknown>): Promise<void> {
		this.handler = handler;
		this.running = true;
	}

	send(to: string, _address: string, msg: unknown): void {
		if (!this.running) return;
		const m = this.net.tamper ? this.net.tamper(this.localId, to, msg) : msg;
		if (m === undefined) return;
		const bytes = pack(m);
		if (bytes.length > this.net.maxMessageBytes) {
			this.handler?.onSendFailure?.(to, new Error(`message of ${bytes.length} bytes exceeds the bound`));
			return;
		}
		if (!this.net.deliver(this.localId, to, bytes)) {
			this.handler?.onSendFailure?.(to, new Error(`no route to ${to}`));
		}
	}

	receive(from: string, bytes: Uint8Array): void {
		if (this.running) this.handler?.onMessage(from, unpack(bytes));
	}

	async stop(): Promise<void> {
		this.running = false;
	}
}
