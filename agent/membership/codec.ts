// Packets: [version u8][HMAC-SHA256/16 over the rest][boot 8][seq u32][ms u48][msgpackr body].
// The MAC is keyed by the cluster secret, so non-members and other clusters are refused before
// anything is decoded; boot, seq and stamp (freshness.ts) let receivers drop replays.
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto";
import { Packr } from "msgpackr";
import { InvalidMetadataError, InvalidPacketError, NotAMemberError, UnknownVersionError } from "./errors.ts";
import { BOOT_BYTES, type Freshness, FreshnessSource } from "./freshness.ts";
import type { MemberMeta, Update } from "./types.ts";

/** 2: freshness header and signed self-statements; 3: signed suspect and dead claims (`csig`). */
export const VERSION = 3;
const MAC = 16;
const FRESH = BOOT_BYTES + 4 + 6;
const HEAD = 1 + MAC + FRESH;
const MAX_SIG = 128;
/** For callers that pass no freshness of their own (tools, tests): one sender life per process. */
const processFreshness = new FreshnessSource();
const packr = new Packr({ useRecords: false });

export type Packet =
	// Probes and their answers carry no sender id (the address answers for it), a ping names its
	// target by a short tag (probeTag), and an empty update list is left out: probes are most of the
	// idle traffic, and a 52-character peer id was most of a probe.
	| { t: "ping"; seq: number; from?: string; to: string; u: Update[] }
	| { t: "ack"; seq: number; from?: string; u: Update[] }
	| { t: "nack"; seq: number; from?: string; u: Update[] }
	// w: the requester's indirect window (ms); the relay nacks before it ends.
	| { t: "pingReq"; seq: number; from: string; target: string; targetAddr: string; w?: number; u: Update[] }
	| { t: "sync"; from: string; reply: boolean; u: Update[] };

/** How a ping names its target: the id's last 8 characters (the random part of a peer id). */
export function probeTag(id: string): string {
	return id.length > 8 ? id.slice(-8) : id;
}

// Importing a raw key costs more than the MAC itself: keep one KeyObject per key.
const keyObjects = new WeakMap<Uint8Array, KeyObject>();
function macKey(key: Uint8Array): KeyObject {
	let k = keyObjects.get(key);
	if (!k) {
		k = createSecretKey(key);
		keyObjects.set(key, k);
	}
	return k;
}

export function encodePacket(p: Packet, key: Uint8Array, fresh: Freshness = processFreshness.next()): Buffer {
	const { u, ...rest } = p;
	const body = packr.pack(u.length > 0 ? p : rest);
	const out = Buffer.allocUnsafe(HEAD + body.length);
	out[0] = VERSION;
	out.set(fresh.boot.subarray(0, BOOT_BYTES), 1 + MAC);
	out.writeUInt32BE(fresh.seq, 1 + MAC + BOOT_BYTES);
	out.writeUIntBE(fresh.ts, 1 + MAC + BOOT_BYTES + 4, 6);
	out.set(body, HEAD);
	const mac = createHmac("sha256", macKey(key))
		.update(out.subarray(1 + MAC))
		.digest();
	mac.copy(out, 1, 0, MAC);
	return out;
}

const STATES = new Set(["alive", "suspect", "dead", "left"]);
const TYPES = new Set(["ping", "ack", "nack", "pingReq", "sync"]);

export function decodePacket(buf: Uint8Array, key: Uint8Array, maxBytes: number): Packet {
	return decodeFrame(buf, key, maxBytes).packet;
}

/** Authenticate and decode a packet; its freshness header is the caller's to check (replay windows). */
export function decodeFrame(buf: Uint8Array, key: Uint8Array, maxBytes: number): { packet: Packet; fresh: Freshness } {
	if (buf.length > maxBytes) throw new InvalidPacketError(`${buf.length} bytes exceeds the ${maxBytes}-byte bound`);
	if (buf.length < HEAD + 1) throw new InvalidPacketError(`truncated (${buf.length} bytes)`);
	if (buf[0] !== VERSION) throw new UnknownVersionError(buf[0]!, VERSION);
	const want = createHmac("sha256", macKey(key))
		.update(buf.subarray(1 + MAC))
		.digest()
		.subarray(0, MAC);
	if (!timingSafeEqual(want, buf.subarray(1, 1 + MAC))) throw new NotAMemberError();
	const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length);
	const fresh: Freshness = {
		boot: b.subarray(1 + MAC, 1 + MAC + BOOT_BYTES),
		seq: b.readUInt32BE(1 + MAC + BOOT_BYTES),
		ts: b.readUIntBE(1 + MAC + BOOT_BYTES + 4, 6),
	};
	const body = b.subarray(HEAD);
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
	if (p.t === "pingReq") {
		if (typeof p.target !== "string" || typeof p.targetAddr !== "string" || p.targetAddr.length > MAX_ID)
			throw new InvalidPacketError("malformed probe request");
		if (p.w !== undefined && !(typeof p.w === "number" && p.w > 0 && p.w <= 600_000))
			throw new InvalidPacketError("probe request window out of range");
	}
	for (const u of p.u) {
		if (
			typeof u?.id !== "string" ||
			u.id.length > MAX_ID ||
			typeof u.addr !== "string" ||
			u.addr.length > MAX_ID ||
			typeof u.by !== "string" ||
			u.by.length > MAX_ID ||
			!Number.isSafeInteger(u.inc) ||
			u.inc < 0 ||
			!STATES.has(u.state) ||
			(u.sig !== undefined && !(u.sig instanceof Uint8Array && u.sig.length <= MAX_SIG)) ||
			(u.csig !== undefined && !(u.csig instanceof Uint8Array && u.csig.length <= MAX_SIG))
		) {
			throw new InvalidPacketError("malformed member update");
		}
	}
	return { packet: p, fresh };
}

const MAX_ID = 128;
const MAX_STR = 256;
const MAX_LABELS = 64;
const MAX_ADDRS = 16;
const META_FIELDS = new Set(["addresses", "platform", "labels", "resources", "role", "version"]);

const isStr = (v: unknown, max = MAX_STR): v is string => typeof v === "string" && v.length <= max;
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;
const plain = (v: unknown): v is Record<string, unknown> =>
	typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** Member metadata has a known shape: only these fields, bounded strings and lists. */
export function validateMeta(meta: unknown): asserts meta is MemberMeta {
	const bad = (why: string): never => {
		throw new InvalidMetadataError(why);
	};
	if (!plain(meta)) return bad("not a map");
	for (const k of Object.keys(meta)) if (!META_FIELDS.has(k)) bad(`unknown field "${k.slice(0, 32)}"`);
	const { addresses, platform, labels, resources, role, version } = meta;
	if (addresses !== undefined) {
		if (!Array.isArray(addresses) || addresses.length > MAX_ADDRS || !addresses.every((a) => isStr(a)))
			bad(`addresses must be at most ${MAX_ADDRS} strings of at most ${MAX_STR} characters`);
	}
	if (platform !== undefined) {
		if (
			!plain(platform) ||
			!isStr(platform.os, 32) ||
			!isStr(platform.architecture, 32) ||
			(platform.variant !== undefined && !isStr(platform.variant, 32)) ||
			Object.keys(platform).some((k) => k !== "os" && k !== "architecture" && k !== "variant")
		)
			bad("platform must be {os, architecture, variant?} with short strings");
	}
	if (labels !== undefined) {
		if (!plain(labels) || Object.keys(labels).length > MAX_LABELS)
			bad(`labels must be a map of at most ${MAX_LABELS} entries`);
		for (const [k, v] of Object.entries(labels as Record<string, unknown>))
			if (k.length === 0 || k.length > 128 || !isStr(v)) bad(`label "${k.slice(0, 32)}" is not a short string`);
	}
	if (resources !== undefined) {
		if (
			!plain(resources) ||
			!isCount(resources.cpus) ||
			!isCount(resources.memoryBytes) ||
			Object.keys(resources).some((k) => k !== "cpus" && k !== "memoryBytes")
		)
			bad("resources must be {cpus, memoryBytes} with non-negative numbers");
	}
	if (role !== undefined && role !== "manager" && role !== "worker") bad("role must be manager or worker");
	if (version !== undefined && !isStr(version, 64)) bad("version must be a string of at most 64 characters");
}
