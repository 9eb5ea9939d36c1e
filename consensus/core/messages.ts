// The messages Raft peers exchange. Plain objects (msgpackr-friendly); validate() checks the shape
// of anything that came off the wire before the core sees it.
import { InvalidMessageError } from "../errors.ts";
import type { LogEntry, SnapshotMeta } from "../storage/types.ts";

interface Base {
	term: number;
	from: string;
	to: string;
}

/** RequestVote (pre = the pre-vote round, which changes no term; transfer = leadership transfer). */
export interface VoteRequest extends Base {
	type: "vote";
	pre: boolean;
	transfer: boolean;
	lastIndex: number;
	lastTerm: number;
}

export interface VoteResponse extends Base {
	type: "voteResp";
	pre: boolean;
	granted: boolean;
}

export interface AppendRequest extends Base {
	type: "append";
	prevIndex: number;
	prevTerm: number;
	entries: LogEntry[];
	commit: number;
}

/** On success `index` is the follower's match; on rejection it echoes prevIndex and hints where to retry. */
export interface AppendResponse extends Base {
	type: "appendResp";
	success: boolean;
	index: number;
	hintIndex: number;
	hintTerm: number;
}

/** Leader liveness + commit propagation; `ctx` > 0 ties acks to a ReadIndex round. */
export interface Heartbeat extends Base {
	type: "heartbeat";
	commit: number;
	ctx: number;
}

export interface HeartbeatResponse extends Base {
	type: "heartbeatResp";
	ctx: number;
}

/**
 * InstallSnapshot; the core emits it without `data`, which the shell attaches from the snapshot
 * store. On the wire the data travels in chunks (offset, done, checksum of the whole snapshot);
 * the receiving shell reassembles and verifies them before the core sees one whole message.
 */
export interface SnapshotRequest extends Base {
	type: "snapshot";
	meta: SnapshotMeta;
	data?: Uint8Array;
	offset?: number;
	done?: boolean;
	checksum?: string;
}

/** Leadership transfer: the target starts an election at once. */
export interface TimeoutNow extends Base {
	type: "timeoutNow";
}

/**
 * A member refused a message from `about`, a sender its latest configuration does not name: its
 * log may lag behind the entry that added it (or the sender is an outsider). It asks the servers
 * it knows whether they know `about`. Changes no term on either side.
 */
export interface ServerQuery extends Base {
	type: "serverQuery";
	about: string;
}

/** A member's answer: `known` when `about` is a server of its latest configuration or its leader. */
export interface ServerInfo extends Base {
	type: "serverInfo";
	about: string;
	known: boolean;
}

export type Message =
	| VoteRequest
	| VoteResponse
	| AppendRequest
	| AppendResponse
	| Heartbeat
	| HeartbeatResponse
	| SnapshotRequest
	| TimeoutNow
	| ServerQuery
	| ServerInfo;

export type MessageType = Message["type"];

const ENTRY_TYPES = new Set(["command", "noop", "configuration", "barrier"]);

const isIndex = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isId = (v: unknown): v is string => typeof v === "string" && v.length > 0 && v.length <= 256;

function need(ok: boolean, what: string): void {
	if (!ok) throw new InvalidMessageError(what);
}

/** Throws InvalidMessageError unless `m` is a well-formed message; returns it typed. */
export function validateMessage(m: unknown, limits: { maxEntries?: number } = {}): Message {
	need(typeof m === "object" && m !== null && !Array.isArray(m), "message is not an object");
	const o = m as Record<string, unknown>;
	need(isIndex(o.term), "term must be a non-negative integer");
	need(isId(o.from) && isId(o.to), "from/to must be server ids");
	switch (o.type) {
		case "vote":
			need(typeof o.pre === "boolean" && typeof o.transfer === "boolean", "vote: pre/transfer must be booleans");
			need(isIndex(o.lastIndex) && isIndex(o.lastTerm), "vote: lastIndex/lastTerm must be integers");
			break;
		case "voteResp":
			need(typeof o.pre === "boolean" && typeof o.granted === "boolean", "voteResp: pre/granted must be booleans");
			break;
		case "append": {
			need(isIndex(o.prevIndex) && isIndex(o.prevTerm) && isIndex(o.commit), "append: prevIndex/prevTerm/commit");
			need(Array.isArray(o.entries), "append: entries must be an array");
			const entries = o.entries as unknown[];
			need(entries.length <= (limits.maxEntries ?? 100_000), "append: too many entries");
			let expect = (o.prevIndex as number) + 1;
			for (const e of entries) {
				need(typeof e === "object" && e !== null, "append: entry is not an object");
				const x = e as Record<string, unknown>;
				need(x.index === expect, `append: entry index ${String(x.index)} where ${expect} was expected`);
				need(isIndex(x.term) && (x.term as number) <= (o.term as number), "append: entry term");
				need(typeof x.type === "string" && ENTRY_TYPES.has(x.type), "append: entry type");
				need(x.data instanceof Uint8Array, "append: entry data must be bytes");
				expect++;
			}
			break;
		}
		case "appendResp":
			need(typeof o.success === "boolean", "appendResp: success must be a boolean");
			need(isIndex(o.index) && isIndex(o.hintIndex) && isIndex(o.hintTerm), "appendResp: index/hint");
			break;
		case "heartbeat":
			need(isIndex(o.commit) && isIndex(o.ctx), "heartbeat: commit/ctx");
			break;
		case "heartbeatResp":
			need(isIndex(o.ctx), "heartbeatResp: ctx");
			break;
		case "snapshot": {
			const meta = o.meta as Record<string, unknown> | undefined;
			need(typeof meta === "object" && meta !== null, "snapshot: meta");
			need(isIndex(meta!.index) && isIndex(meta!.term) && isIndex(meta!.configurationIndex), "snapshot: meta indexes");
			const cfg = meta!.configuration as { servers?: unknown } | undefined;
			need(Array.isArray(cfg?.servers), "snapshot: meta.configuration.servers");
			need(o.data === undefined || o.data instanceof Uint8Array, "snapshot: data must be bytes");
			need(o.offset === undefined || isIndex(o.offset), "snapshot: offset must be a non-negative integer");
			need(o.done === undefined || typeof o.done === "boolean", "snapshot: done must be a boolean");
			need(
				o.checksum === undefined || (typeof o.checksum === "string" && o.checksum.length <= 128),
				"snapshot: checksum must be a short string",
			);
			break;
		}
		case "timeoutNow":
			break;
		case "serverQuery":
			need(isId(o.about), "serverQuery: about must be a server id");
			break;
		case "serverInfo":
			need(isId(o.about) && typeof o.known === "boolean", "serverInfo: about/known");
			break;
		default:
			throw new InvalidMessageError(`unknown message type ${JSON.stringify(o.type)}`);
	}
	return m as Message;
}
