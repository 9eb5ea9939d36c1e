// Who belongs to the cluster, as this node knows it: the store's `nodes` table on managers, a
// copy fetched from a manager on workers, the join grant's list at first. It is the host's
// allow-list and says who may speak Raft (managers); gossip never writes it.
import { EventEmitter } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../../consensus/index.ts";
import { BadDirectoryReplyError } from "./errors.ts";
import { type NodeRole, validAddr, validPeerId } from "./record.ts";

export interface DirectoryEntry {
	id: string;
	role: NodeRole;
	addr: string;
}

export interface DirectoryEvents {
	/** Nodes that were in the directory and are not any more (their connections should close). */
	removed: [string[]];
	changed: [];
}

export const MAX_DIRECTORY_ENTRIES = 100_000;

/** Checks a list of entries that came from elsewhere (a reply, a grant, a file). */
export function validateEntries(from: string, raw: unknown): DirectoryEntry[] {
	if (!Array.isArray(raw)) throw new BadDirectoryReplyError(from, "nodes is not a list");
	if (raw.length > MAX_DIRECTORY_ENTRIES) throw new BadDirectoryReplyError(from, "too many nodes");
	return raw.map((e: unknown, i) => {
		const x = e as Partial<DirectoryEntry> | null;
		if (!x || !validPeerId(x.id)) throw new BadDirectoryReplyError(from, `entry ${i}: id is not a peer id`);
		if (x.role !== "manager" && x.role !== "worker")
			throw new BadDirectoryReplyError(from, `entry ${i}: role must be manager or worker`);
		if (!validAddr(x.addr)) throw new BadDirectoryReplyError(from, `entry ${i}: addr must be IPv4:PORT`);
		return { id: x.id, role: x.role, addr: x.addr };
	});
}

export class NodeDirectory extends EventEmitter<DirectoryEvents> {
	private entries = new Map<string, DirectoryEntry>();
	/** The store version the entries reflect (0: not from the store yet). */
	private at = 0;
	private readonly file: string | undefined;

	/** `file`: where the directory persists, so a restarted worker still knows its managers. */
	constructor(file?: string) {
		super();
		this.file = file;
		if (file && existsSync(file)) {
			const d = JSON.parse(readFileSync(file, "utf8")) as { version?: unknown; nodes?: unknown };
			this.set(validateEntries(file, d.nodes), Number(d.version) || 0, false);
		}
	}

	get version(): number {
		return this.at;
	}

	has(id: string): boolean {
		return this.entries.has(id);
	}

	get(id: string): DirectoryEntry | undefined {
		return this.entries.get(id);
	}

	/** May this peer speak Raft to us? Only managers. */
	isManager(id: string): boolean {
		return this.entries.get(id)?.role === "manager";
	}

	list(): DirectoryEntry[] {
		return [...this.entries.values()];
	}

	managers(): DirectoryEntry[] {
		return this.list().filter((e) => e.role === "manager");
	}

	/** Replace the whole directory (a newer view); emits `removed` for nodes that are gone. */
	set(entries: DirectoryEntry[], version: number, persist = true): void {
		const next = new Map(entries.map((e) => [e.id, e]));
		const gone = [...this.entries.keys()].filter((id) => !next.has(id));
		const same =
			gone.length === 0 &&
			next.size === this.entries.size &&
			[...next.values()].every((e) => {
				const o = this.entries.get(e.id);
				return o?.role === e.role && o.addr === e.addr;
			});
		const changed = !same || version !== this.at;
		this.entries = next;
		this.at = version;
		if (changed && persist && this.file)
			writeFileAtomic(this.file, Buffer.from(JSON.stringify({ version, nodes: this.list() })));
		if (!same) this.emit("changed");
		if (gone.length) this.emit("removed", gone);
	}
}
