// Packets: [version u8][HMAC-SHA256/16 over the rest][msgpackr body]. The MAC is keyed by the
// cluster secret, so non-members and other clusters are refused before anything is decoded.
import { createHmac, timingSafeEqual } from "node:crypto";
import { Packr } from "msgpackr";
import { InvalidPacketError, NotAMemberError, UnknownVersionError } from "./errors.ts";
import type { Update } from "./types.ts";

export const VERSION = 1;
const MAC = 16;
const packr = new Packr({ useRecords: false });

export type Packet =
	// Probes and their answers carry no sender id (the address answers for it), a ping names its
	// target by a short tag (probeTag), and an empty update list is left out: probes are most of the
	// idle traffic, and a 52-character peer id was most of a probe.
	| { t: "ping"; seq: number; from?: string; to: string; u: Update[] }
	| { t: "ack"; seq: number; from?: string; u: Update[] }
	| { t: "nack"; seq: number; from?: string; u: Update[] }
	| { t: "pingReq"; seq: number; from: string; target: string; targetAddr: string; u: Update[] }
	| { t: "sync"; from: string; reply: boolean; u: Update[] };

/** How a ping names its target: the id's last 8 characters (the random part of a peer id). */
export function probeTag(id: string): string {
	return id.length > 8 ? id.slice(-8) : id;
}

export function encodePacket(p: Packet, key: Uint8Array): Buffer {
	const { u, ...rest } = p;
	const body = packr.pack(u.length > 0 ? p : rest);
	const mac = createHmac("sha256", key).update(body).digest().subarray(0, MAC);
	return Buffer.concat([Buffer.from([VERSION]), mac, body]);
}

const STATES = new Set(["alive", "suspect", "dead", "left"]);
const TYPES = new Set(["ping", "ack", "nack", "pingReq", "sync"]);

export function decodePacket(buf: Uint8Array, key: Uint8Array, maxBytes: number): Packet {
	if (buf.length > maxBytes) throw new InvalidPacketError(`${buf.length} bytes exceeds the ${maxBytes}-byte bound`);
	if (buf.length < 1 + MAC + 1) throw new InvalidPacketError(`truncated (${buf.length} bytes)`);
	if (buf[0] !== VERSION) throw new UnknownVersionError(buf[0]!);
	const body = buf.subarray(1 + MAC);
	const want = createHmac("sha256", key).update(body).digest().subarray(0, MAC);
	if (!timingSafeEqual(want, buf.subarray(1, 1 + MAC))) throw new NotAMemberError();
	let p: Packet;
	try {
		p = packr.unpack(body) as Packet;
	} catch (err) {
		throw new InvalidPacketError(`undecodable body (${(err as Error).message})`);
	}
	if (typeof p !== "object" || p === null || !TYPES.has((p as { t: string }).t))
		throw new InvalidPacketError("unknown packet type");
	if ((p as { u?: unknown }).u === undefined) (p as { u: Update[] }).u = [];
	const needsFrom = p.t === "sync" || p.t === "pingReq";
	if (
		(needsFrom ? typeof p.from !== "string" : p.from !== undefined && typeof p.from !== "string") ||
		!Array.isArray(p.u)
	)
		throw new InvalidPacketError("missing sender or updates");
	for (const u of p.u) {
		if (
			typeof u?.id !== "string" ||
			typeof u.addr !== "string" ||
			!Number.isSafeInteger(u.inc) ||
			u.inc < 0 ||
			!STATES.has(u.state)
		) {
			throw new InvalidPacketError("malformed member update");
		}
	}
	return p;
}
