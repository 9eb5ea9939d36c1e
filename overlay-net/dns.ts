// The embedded DNS resolver for containers: SERVICE -> its VIP (or its task addresses with
// endpoint mode dnsrr), tasks.SERVICE -> the addresses of its running tasks, anything else
// forwarded to the node's resolvers (dns-forward.ts). A minimal RFC 1035 codec (A queries) over
// UDP and TCP: a UDP answer larger than 512 bytes is truncated with TC set, and clients (glibc,
// musl) then ask again over TCP, which gets the whole answer.
import { createSocket, type Socket } from "node:dgram";
import { createServer, type Server, type Socket as TcpSocket } from "node:net";
import { ipToInt } from "./cidr.ts";
import { forwardQuery } from "./dns-forward.ts";

export interface Question {
	id: number;
	flags: number;
	name: string;
	qtype: number;
	qclass: number;
	/** Bytes of the question section, echoed in the answer. */
	raw: Buffer;
}

export const QTYPE_A = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_FORMERR = 1;
const FLAG_TC = 0x0200;
/** RFC 1035 4.2.1: UDP messages are at most 512 bytes (we do not honour EDNS0 sizes). */
export const UDP_MAX = 512;

/** Parses the first question of a query; undefined for anything malformed. */
export function parseQuery(buf: Buffer): Question | undefined {
	if (buf.length < 12 || buf.length > 512) return undefined;
	const id = buf.readUInt16BE(0);
	const flags = buf.readUInt16BE(2);
	if (flags & 0x8000 || buf.readUInt16BE(4) < 1) return undefined; // a response, or no question
	const labels: string[] = [];
	let off = 12;
	for (;;) {
		if (off >= buf.length) return undefined;
		const len = buf[off]!;
		if (len === 0) {
			off++;
			break;
		}
		if (len > 63 || off + 1 + len > buf.length) return undefined; // no compression in questions
		labels.push(buf.subarray(off + 1, off + 1 + len).toString("ascii"));
		off += 1 + len;
	}
	if (off + 4 > buf.length) return undefined;
	return {
		id,
		flags,
		name: labels.join(".").toLowerCase(),
		qtype: buf.readUInt16BE(off),
		qclass: buf.readUInt16BE(off + 2),
		raw: buf.subarray(12, off + 4),
	};
}

export function buildQuery(id: number, name: string, qtype = QTYPE_A): Buffer {
	const parts = name
		.split(".")
		.filter(Boolean)
		.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, "ascii")]));
	const header = Buffer.alloc(12);
	header.writeUInt16BE(id, 0);
	header.writeUInt16BE(0x0100, 2); // RD
	header.writeUInt16BE(1, 4);
	const tail = Buffer.alloc(5);
	tail.writeUInt16BE(qtype, 1);
	tail.writeUInt16BE(1, 3);
	return Buffer.concat([header, ...parts, tail]);
}

export function buildAnswer(q: Question, addresses: string[], rcode = 0, ttl = 600): Buffer {
	const header = Buffer.alloc(12);
	header.writeUInt16BE(q.id, 0);
	header.writeUInt16BE(0x8000 | 0x0400 | (q.flags & 0x0100) | 0x0080 | rcode, 2); // QR AA RD RA
	header.writeUInt16BE(1, 4);
	const answers = q.qtype === QTYPE_A ? addresses : [];
	header.writeUInt16BE(answers.length, 6);
	const rrs = answers.map((a) => {
		const rr = Buffer.alloc(16);
		rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
		rr.writeUInt16BE(QTYPE_A, 2);
		rr.writeUInt16BE(1, 4);
		rr.writeUInt32BE(ttl, 6);
		rr.writeUInt16BE(4, 10);
		rr.writeUInt32BE(ipToInt(a), 12);
		return rr;
	});
	return Buffer.concat([header, q.raw, ...rrs]);
}

/** The offset after the (possibly compressed) name at `off`; throws when it runs past the end. */
function skipName(buf: Buffer, off: number): number {
	for (;;) {
		if (off >= buf.length) throw new RangeError("DNS name runs past the end");
		const len = buf[off]!;
		if ((len & 0xc0) === 0xc0) return off + 2;
		off += 1 + len;
		if (len === 0) return off;
	}
}

/**
 * Fits a response into a UDP datagram: as many whole answer records as fit, TC set when any were
 * dropped (the client retries over TCP). Only the answer section is cut; authority and additional
 * records of a forwarded reply go first.
 */
export function truncateForUdp(buf: Buffer, max = UDP_MAX): Buffer {
	if (buf.length <= max) return buf;
	try {
		return cut(buf, max);
	} catch {
		// Malformed (a forwarded reply): the header alone, TC set, no sections.
		const out = Buffer.from(buf.subarray(0, 12));
		out.writeUInt16BE(out.readUInt16BE(2) | FLAG_TC, 2);
		out.fill(0, 4);
		return out;
	}
}

function cut(buf: Buffer, max: number): Buffer {
	let off = 12;
	const qd = buf.readUInt16BE(4);
	for (let i = 0; i < qd; i++) off = skipName(buf, off) + 4;
	const an = buf.readUInt16BE(6);
	let kept = 0;
	for (let i = 0; i < an; i++) {
		const start = off;
		off = skipName(buf, off);
		if (off + 10 > buf.length) break;
		off += 10 + buf.readUInt16BE(off + 8);
		if (off > max) {
			off = start;
			break;
		}
		kept++;
	}
	const out = Buffer.from(buf.subarray(0, Math.min(off, max)));
	out.writeUInt16BE(out.readUInt16BE(2) | FLAG_TC, 2);
	out.writeUInt16BE(kept, 6);
	out.writeUInt16BE(0, 8);
	out.writeUInt16BE(0, 10);
	return out;
}

/** Reads the A records and rcode of a response (for tests and clients); throws on a malformed one. */
export function parseAnswer(buf: Buffer): { id: number; rcode: number; addresses: string[]; truncated: boolean } {
	if (buf.length < 12) throw new RangeError("DNS response shorter than its header");
	const id = buf.readUInt16BE(0);
	const truncated = (buf.readUInt16BE(2) & FLAG_TC) !== 0;
	const rcode = buf.readUInt16BE(2) & 0xf;
	const qd = buf.readUInt16BE(4);
	const an = buf.readUInt16BE(6);
	let off = 12;
	for (let i = 0; i < qd; i++) off = skipName(buf, off) + 4;
	const addresses: string[] = [];
	for (let i = 0; i < an; i++) {
		off = skipName(buf, off);
		if (off + 10 > buf.length) throw new RangeError("DNS record runs past the end");
		const type = buf.readUInt16BE(off);
		const len = buf.readUInt16BE(off + 8);
		if (type === QTYPE_A && len === 4) addresses.push([...buf.subarray(off + 10, off + 14)].join("."));
		off += 10 + len;
	}
	return { id, rcode, addresses, truncated };
}

export interface ServiceRecord {
	vip?: string;
	/** Addresses of running, healthy tasks. */
	tasks: string[];
	endpointMode?: "vip" | "dnsrr";
}

export interface DnsOptions {
	/** Looks a service up by name (lowercase, without a trailing dot). */
	lookup(service: string): ServiceRecord | undefined;
	/** Where other names go ("ip:port"), tried in order (see nodeUpstreams()). */
	upstreams: string[];
	/** Per upstream and attempt (default 2000 ms). */
	timeoutMs?: number;
}

export class DnsServer {
	private sock: Socket | undefined;
	private tcp: Server | undefined;
	private readonly conns = new Set<TcpSocket>();
	private readonly o: DnsOptions;
	private readonly abort = new AbortController();
	readonly stats = { answered: 0, forwarded: 0, malformed: 0, failed: 0, truncated: 0, tcp: 0 };

	constructor(o: DnsOptions) {
		this.o = o;
	}

	resolve(name: string): string[] | undefined {
		if (name.startsWith("tasks.")) return this.o.lookup(name.slice(6))?.tasks;
		const svc = this.o.lookup(name);
		if (!svc) return undefined;
		return svc.endpointMode === "dnsrr" || !svc.vip ? svc.tasks : [svc.vip];
	}

	/** Binds UDP on host:port (0: any free port) and, with `tcp`, TCP on the same port. */
	async start(host: string, port: number, o: { tcp?: boolean } = {}): Promise<{ address: string; port: number }> {
		const sock = createSocket("udp4");
		await new Promise<void>((resolve, reject) => {
			sock.once("error", reject);
			sock.bind(port, host, () => resolve());
		});
		const at = this.serve(sock);
		if (o.tcp) {
			const server = createServer();
			await new Promise<void>((resolve, reject) => {
				server.once("error", reject);
				server.listen(at.port, host, () => resolve());
			});
			this.serveTcp(server);
		}
		return at;
	}

	/** Answers on a socket bound elsewhere (e.g. inside a network's namespace); takes ownership. */
	serve(sock: Socket): { address: string; port: number } {
		sock.removeAllListeners("error");
		sock.on("error", () => {});
		sock.on("message", (msg, rinfo) => this.handle(msg, false, (r) => this.sock?.send(r, rinfo.port, rinfo.address)));
		this.sock = sock;
		return sock.address();
	}

	/** Answers DNS over TCP on a listening server (length-prefixed messages); takes ownership. */
	serveTcp(server: Server): void {
		server.removeAllListeners("error");
		server.on("error", () => {});
		server.on("connection", (c: TcpSocket) => {
			this.conns.add(c);
			c.setTimeout(10_000, () => c.destroy()); // idle clients do not hold a socket forever
			c.on("close", () => this.conns.delete(c));
			c.on("error", () => {});
			let buf = Buffer.alloc(0);
			c.on("data", (d: Buffer) => {
				buf = Buffer.concat([buf, d]);
				while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
					const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
					buf = buf.subarray(2 + msg.length);
					this.stats.tcp++;
					this.handle(msg, true, (r) => {
						const len = Buffer.alloc(2);
						len.writeUInt16BE(r.length);
						if (!c.destroyed) c.write(Buffer.concat([len, r]));
					});
				}
			});
		});
		this.tcp = server;
	}

	/** One query; whatever goes wrong answering it never takes the server down. */
	private handle(msg: Buffer, tcp: boolean, reply: (r: Buffer) => void): void {
		this.onQuery(msg, tcp, reply).catch(() => {
			this.stats.failed++;
		});
	}

	private async onQuery(msg: Buffer, tcp: boolean, reply: (r: Buffer) => void): Promise<void> {
		const send = (r: Buffer) => {
			const out = tcp ? r : truncateForUdp(r);
			if (out !== r) this.stats.truncated++;
			reply(out);
		};
		const q = parseQuery(msg);
		if (!q) {
			this.stats.malformed++;
			if (msg.length >= 12) {
				const r = Buffer.from(msg.subarray(0, 12));
				r.writeUInt16BE(0x8000 | RCODE_FORMERR, 2);
				r.fill(0, 4);
				reply(r);
			}
			return;
		}
		const local = this.resolve(q.name);
		if (local) {
			this.stats.answered++;
			send(buildAnswer(q, shuffle(local)));
			return;
		}
		if (!q.name.includes(".") || this.o.upstreams.length === 0) {
			this.stats.answered++;
			send(buildAnswer(q, [], RCODE_NXDOMAIN));
			return;
		}
		this.stats.forwarded++;
		const r = await forwardQuery(msg, this.o.upstreams, {
			timeoutMs: this.o.timeoutMs ?? 2000,
			tcp,
			signal: this.abort.signal,
		});
		if (r) send(r);
		else {
			this.stats.failed++;
			send(buildAnswer(q, [], RCODE_SERVFAIL));
		}
	}

	async stop(): Promise<void> {
		this.abort.abort();
		const s = this.sock;
		this.sock = undefined;
		const t = this.tcp;
		this.tcp = undefined;
		for (const c of this.conns) c.destroy();
		if (t) await new Promise<void>((r) => t.close(() => r()));
		if (s) await new Promise<void>((r) => s.close(() => r()));
	}
}

/** Round robin by shuffling, as Docker's resolver does, so clients spread over tasks. */
function shuffle<T>(xs: T[]): T[] {
	const a = [...xs];
	for (let i = a.length - 1; i > 0; i--) {
		const j = Math.floor(Math.random() * (i + 1));
		[a[i], a[j]] = [a[j]!, a[i]!];
	}
	return a;
}

/** /etc/resolv.conf for a task whose resolver is `nameserver` (as Docker's, ndots:0). */
export function resolvConf(nameserver: string, search: string[] = []): string {
	return `nameserver ${nameserver}\n${search.length ? `search ${search.join(" ")}\n` : ""}options ndots:0\n`;
}
