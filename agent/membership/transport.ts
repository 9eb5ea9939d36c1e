// How membership packets travel: real UDP (what makes SWIM's failure detection fast), or an
// in-memory network with a virtual clock for simulating a thousand members in one process.
import { createSocket, type Socket } from "node:dgram";

export interface Timer {
	cancel(): void;
}

export interface Clock {
	now(): number;
	setTimer(ms: number, fn: () => void): Timer;
}

export const realClock: Clock = {
	now: () => performance.now(),
	setTimer(ms, fn) {
		const t = setTimeout(fn, ms);
		t.unref();
		return { cancel: () => clearTimeout(t) };
	},
};

export interface PacketTransport {
	/** Where others reach this member ("host:port"). */
	readonly addr: string;
	start(onPacket: (from: string, data: Uint8Array) => void): Promise<void>;
	send(to: string, data: Uint8Array): void;
	stop(): Promise<void>;
	readonly bytesSent: number;
}

export class UdpTransport implements PacketTransport {
	readonly addr: string;
	private sock: Socket | undefined;
	private readonly host: string;
	private port: number;
	bytesSent = 0;

	private readonly advertise: string | undefined;

	/** Bind host:port; `advertise` ("ip:port") is the address others are told, when it differs (NAT, 0.0.0.0). */
	constructor(host: string, port = 0, advertise?: string) {
		this.host = host;
		this.port = port;
		this.advertise = advertise;
		this.addr = advertise ?? `${host}:${port}`;
	}

	async start(onPacket: (from: string, data: Uint8Array) => void): Promise<void> {
		const sock = createSocket({ type: this.host.includes(":") ? "udp6" : "udp4" });
		sock.on("message", (msg, rinfo) => onPacket(`${rinfo.address}:${rinfo.port}`, msg));
		sock.on("error", () => {}); // ICMP errors for dead peers are expected; probes time out
		await new Promise<void>((resolve, reject) => {
			sock.once("error", reject);
			sock.bind(this.port, this.host, () => resolve());
		});
		this.port = sock.address().port;
		(this as { addr: string }).addr = this.advertise ?? `${this.host}:${this.port}`;
		this.sock = sock;
	}

	send(to: string, data: Uint8Array): void {
		const i = to.lastIndexOf(":");
		this.bytesSent += data.length;
		this.sock?.send(data, Number(to.slice(i + 1)), to.slice(0, i));
	}

	async stop(): Promise<void> {
		const s = this.sock;
		this.sock = undefined;
		if (s) await new Promise<void>((r) => s.close(() => r()));
	}
}

/** A virtual clock: timers fire in time order as the simulation advances it. */
export class VirtualClock implements Clock {
	private t = 0;
	private seq = 0;
	private heap: Array<{ at: number; seq: number; fn: () => void; dead: boolean }> = [];

	now(): number {
		return this.t;
	}

	setTimer(ms: number, fn: () => void): Timer {
		const e = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, dead: false };
		this.push(e);
		return { cancel: () => (e.dead = true) };
	}

	/** Timers not yet fired or cancelled. */
	pending(): number {
		return this.heap.filter((e) => !e.dead).length;
	}

	/** Run every timer due up to `until`. */
	advance(until: number): void {
		for (;;) {
			const top = this.heap[0];
			if (!top || top.at > until) break;
			this.pop();
			this.t = top.at;
			if (!top.dead) top.fn();
		}
		this.t = until;
	}

	private push(e: (typeof this.heap)[number]): void {
		const h = this.heap;
		h.push(e);
		let i = h.length - 1;
		while (i > 0) {
			const p = (i - 1) >> 1;
			if (this.less(h[p]!, h[i]!)) break;
			[h[p], h[i]] = [h[i]!, h[p]!];
			i = p;
		}
	}

	private pop(): void {
		const h = this.heap;
		const last = h.pop()!;
		if (h.length === 0) return;
		h[0] = last;
		let i = 0;
		for (;;) {
			const l = 2 * i + 1;
			const r = l + 1;
			let m = i;
			if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
			if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
			if (m === i) break;
			[h[m], h[i]] = [h[i]!, h[m]!];
			i = m;
		}
	}

	private less(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
		return a.at < b.at || (a.at === b.at && a.seq < b.seq);
	}
}

/** An in-memory datagram network on a virtual clock: latency, loss, partitions, byte counts. */
export class SimNetwork {
	readonly clock: VirtualClock;
	private readonly nodes = new Map<string, { onPacket?: (from: string, d: Uint8Array) => void; t: SimTransport }>();
	private readonly random: () => number;
	lossRate = 0;
	latencyMs: [number, number] = [1, 5];
	private readonly cut = new Set<string>();
	/** Extra delay on everything a slow node sends and receives. */
	readonly slow = new Map<string, number>();

	constructor(clock: VirtualClock, random: () => number) {
		this.clock = clock;
		this.random = random;
	}

	transport(addr: string): SimTransport {
		const t = new SimTransport(this, addr);
		this.nodes.set(addr, { t });
		return t;
	}

	listen(addr: string, onPacket: ((from: string, d: Uint8Array) => void) | undefined): void {
		const n = this.nodes.get(addr);
		if (n) n.onPacket = onPacket;
	}

	partition(a: string[], b: string[]): void {
		for (const x of a) for (const y of b) this.cut.add(`${x}>${y}`).add(`${y}>${x}`);
	}

	heal(): void {
		this.cut.clear();
	}

	deliver(from: string, to: string, data: Uint8Array): void {
		if (this.cut.has(`${from}>${to}`) || this.random() < this.lossRate) return;
		const [lo, hi] = this.latencyMs;
		const delay = lo + this.random() * (hi - lo) + (this.slow.get(from) ?? 0) + (this.slow.get(to) ?? 0);
		this.clock.setTimer(delay, () => this.nodes.get(to)?.onPacket?.(from, data));
	}
}

export class SimTransport implements PacketTransport {
	readonly addr: string;
	private readonly net: SimNetwork;
	bytesSent = 0;

	constructor(net: SimNetwork, addr: string) {
		this.net = net;
		this.addr = addr;
	}

	async start(onPacket: (from: string, data: Uint8Array) => void): Promise<void> {
		this.net.listen(this.addr, onPacket);
	}

	send(to: string, data: Uint8Array): void {
		this.bytesSent += data.length;
		this.net.deliver(this.addr, to, data);
	}

	async stop(): Promise<void> {
		this.net.listen(this.addr, undefined);
	}
}
