// Forwarding to the node's resolvers: upstreams are tried in order, each with its own timeout; a
// UDP reply counts only if it comes from the upstream's address and port with the query's id and
// question (anything else is ignored, as a stub resolver must, against spoofing); over TCP the
// stream is length-prefixed (RFC 1035 4.2.2). A truncated UDP reply is retried over TCP.
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { connect } from "node:net";

export interface Upstream {
	host: string;
	port: number;
}

export function parseUpstream(s: string): Upstream {
	const m = /^([\d.]+)(?::(\d+))?$/.exec(s.trim());
	return { host: m?.[1] ?? s, port: Number(m?.[2] ?? 53) };
}

const sameQuestion = (a: Buffer, b: Buffer) => {
	// The question section follows the 12-byte header; compare it (names case-insensitively).
	const qa = a.subarray(12, questionEnd(a));
	const qb = b.subarray(12, questionEnd(b));
	return qa.length > 0 && qa.toString("latin1").toLowerCase() === qb.toString("latin1").toLowerCase();
};

function questionEnd(buf: Buffer): number {
	let off = 12;
	while (off < buf.length && buf[off] !== 0) {
		if ((buf[off]! & 0xc0) !== 0) return 0;
		off += 1 + buf[off]!;
	}
	return off + 5 <= buf.length ? off + 5 : 0;
}

/** One UDP exchange; undefined on timeout. */
export function askUdp(
	query: Buffer,
	up: Upstream,
	timeoutMs: number,
	signal?: AbortSignal,
): Promise<Buffer | undefined> {
	const s = createSocket("udp4");
	return new Promise((resolve) => {
		const done = (v: Buffer | undefined) => {
			clearTimeout(timer);
			signal?.removeEventListener("abort", abort);
			s.close();
			resolve(v);
		};
		const abort = () => done(undefined);
		const timer = setTimeout(abort, timeoutMs);
		signal?.addEventListener("abort", abort);
		s.on("message", (m, rinfo) => {
			if (rinfo.address !== up.host || rinfo.port !== up.port) return; // not from the upstream
			if (m.length < 12 || m.readUInt16BE(0) !== query.readUInt16BE(0) || !(m[2]! & 0x80)) return;
			if (!sameQuestion(m, query)) return;
			done(m);
		});
		s.on("error", () => done(undefined));
		s.send(query, up.port, up.host);
	});
}

/** One TCP exchange (2-byte length prefix); undefined on timeout or a bad answer. */
export function askTcp(
	query: Buffer,
	up: Upstream,
	timeoutMs: number,
	signal?: AbortSignal,
): Promise<Buffer | undefined> {
	return new Promise((resolve) => {
		const c = connect({ host: up.host, port: up.port });
		let buf = Buffer.alloc(0);
		const done = (v: Buffer | undefined) => {
			clearTimeout(timer);
			signal?.removeEventListener("abort", abort);
			c.destroy();
			resolve(v);
		};
		const abort = () => done(undefined);
		const timer = setTimeout(abort, timeoutMs);
		signal?.addEventListener("abort", abort);
		c.on("error", () => done(undefined));
		c.on("connect", () => {
			const len = Buffer.alloc(2);
			len.writeUInt16BE(query.length);
			c.write(Buffer.concat([len, query]));
		});
		c.on("data", (d: Buffer) => {
			buf = Buffer.concat([buf, d]);
			if (buf.length < 2) return;
			const n = buf.readUInt16BE(0);
			if (buf.length < 2 + n) return;
			const m = buf.subarray(2, 2 + n);
			done(m.length >= 12 && m.readUInt16BE(0) === query.readUInt16BE(0) && sameQuestion(m, query) ? m : undefined);
		});
		c.on("end", () => done(undefined));
	});
}

/**
 * Tries each upstream in order until one answers. Over UDP a reply with TC set is asked again
 * over TCP (the full answer) unless `udpOnly`; the caller truncates for its own UDP client.
 */
export async function forwardQuery(
	query: Buffer,
	upstreams: string[],
	o: { timeoutMs: number; tcp: boolean; signal?: AbortSignal },
): Promise<Buffer | undefined> {
	for (const u of upstreams.map(parseUpstream)) {
		if (o.signal?.aborted) return undefined;
		if (o.tcp) {
			const r = await askTcp(query, u, o.timeoutMs, o.signal);
			if (r) return r;
			continue;
		}
		const r = await askUdp(query, u, o.timeoutMs, o.signal);
		if (!r) continue;
		if (r[2]! & 0x02) return (await askTcp(query, u, o.timeoutMs, o.signal)) ?? r;
		return r;
	}
	return undefined;
}

export interface ResolvConf {
	nameservers: string[];
	search: string[];
	options: string[];
}

export function parseResolvConf(text: string): ResolvConf {
	const out: ResolvConf = { nameservers: [], search: [], options: [] };
	for (const raw of text.split("\n")) {
		const line = raw.replace(/[#;].*$/, "").trim();
		const [key, ...rest] = line.split(/\s+/);
		if (key === "nameserver" && rest[0]) out.nameservers.push(rest[0]);
		else if (key === "search" || key === "domain") out.search = rest;
		else if (key === "options") out.options.push(...rest);
	}
	return out;
}

/**
 * The node's resolvers as upstreams ("ip:53") for a task's DNS, from /etc/resolv.conf (or `text`),
 * IPv4 only. Docker skips loopback resolvers (127.x, e.g. systemd-resolved's stub) because its
 * forwarder runs in the container's namespace; ours runs in the agent, in the node's namespace,
 * where they answer, so they are kept unless `skipLoopback` (for a forwarder placed in a sandbox).
 */
export function nodeUpstreams(text?: string, o: { skipLoopback?: boolean } = {}): string[] {
	const conf = parseResolvConf(text ?? readFileSync("/etc/resolv.conf", "utf8"));
	return conf.nameservers
		.filter((ns) => /^\d{1,3}(\.\d{1,3}){3}$/.test(ns) && !(o.skipLoopback && ns.startsWith("127.")))
		.map((ns) => `${ns}:53`);
}
