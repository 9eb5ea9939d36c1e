// IPv4 CIDR arithmetic on 32-bit integers.
import { InvalidCidrError } from "./errors.ts";

export interface Cidr {
	base: number;
	prefix: number;
	text: string;
}

export function ipToInt(ip: string): number {
	const p = ip.split(".");
	if (p.length !== 4 || p.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255))
		throw new InvalidCidrError(ip, "not an IPv4 address");
	return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

export const intToIp = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");

export function parseCidr(text: string): Cidr {
	const m = /^([\d.]+)\/(\d{1,2})$/.exec(text.trim());
	if (!m) throw new InvalidCidrError(text, "use ADDRESS/PREFIX, e.g. 10.0.1.0/24");
	const prefix = Number(m[2]);
	if (prefix < 8 || prefix > 30) throw new InvalidCidrError(text, "the prefix must be between /8 and /30");
	const ip = ipToInt(m[1]!);
	const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
	if ((ip & mask) >>> 0 !== ip)
		throw new InvalidCidrError(text, `host bits are set (did you mean ${intToIp((ip & mask) >>> 0)}/${prefix}?)`);
	return { base: ip, prefix, text: `${intToIp(ip)}/${prefix}` };
}

export const size = (c: Cidr) => 2 ** (32 - c.prefix);
export const contains = (c: Cidr, ip: number) => ip >= c.base && ip < c.base + size(c);
export const overlaps = (a: Cidr, b: Cidr) => a.base < b.base + size(b) && b.base < a.base + size(a);
