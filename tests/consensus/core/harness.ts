// A tiny synchronous network for scripted core tests: messages are delivered in order until quiet,
// except across cut links. Persistence is implied (the core's Ready is acknowledged at once).
import {
	type Configuration,
	defaultCoreConfig,
	encodeConfiguration,
	type LogEntry,
	type Message,
	RaftCore,
} from "../../../consensus/index.ts";
import { Rng } from "../sim/rng.ts";

export interface NetOptions {
	preVote?: boolean;
	checkQuorum?: boolean;
	maxEntriesPerAppend?: number;
	maxBytesPerAppend?: number;
	maxInflight?: number;
	onRefuse?: (m: Message) => void;
}

export class Net {
	readonly cores = new Map<string, RaftCore>();
	readonly applied = new Map<string, LogEntry[]>();
	readonly cut = new Set<string>();
	readonly sent: Message[] = [];
	/** ReadIndex answers each node produced, in order (settle drains Ready, so keep them here). */
	readonly readStates = new Map<string, Array<{ ctx: number; index: number }>>();
	readonly snapshots = new Map<string, Uint8Array>();
	private rng = new Rng(7);

	constructor(ids: string[], opts: NetOptions & { voters?: string[] } = {}) {
		const voters = opts.voters ?? ids;
		const config: Configuration = {
			servers: ids.map((id) => ({ id, address: id, suffrage: voters.includes(id) ? "voter" : "nonvoter" })),
		};
		const boot: LogEntry = { index: 1, term: 1, type: "configuration", data: encodeConfiguration(config) };
		for (const id of ids) this.add(id, [boot], opts);
	}

	/** A crash and restart: a new core from what the old one had persisted (everything, here). */
	restart(id: string, opts: NetOptions = {}): RaftCore {
		const old = this.get(id);
		const core = new RaftCore(
			{
				...defaultCoreConfig(id, () => this.rng.next()),
				...opts,
				preVote: opts.preVote ?? true,
				checkQuorum: opts.checkQuorum ?? true,
			},
			{ hardState: old.hardState(), entries: old.log.slice(1, old.log.lastIndex()) },
		);
		this.cores.set(id, core);
		return core;
	}

	add(id: string, entries: LogEntry[], opts: NetOptions = {}): RaftCore {
		const core = new RaftCore(
			{
				...defaultCoreConfig(id, () => this.rng.next()),
				...opts,
				preVote: opts.preVote ?? true,
				checkQuorum: opts.checkQuorum ?? true,
			},
			{ hardState: { term: entries.length > 0 ? 1 : 0, vote: "", commit: 0 }, entries },
		);
		this.cores.set(id, core);
		this.applied.set(id, []);
		return core;
	}

	get(id: string): RaftCore {
		return this.cores.get(id)!;
	}

	isolate(id: string): void {
		for (const other of this.cores.keys()) {
			if (other === id) continue;
			this.cut.add(`${id}>${other}`);
			this.cut.add(`${other}>${id}`);
		}
	}

	heal(): void {
		this.cut.clear();
	}

	/** Drain every node's Ready and deliver messages until nothing moves; `drop` loses messages. */
	settle(maxRounds = 1000, drop?: (m: Message) => boolean): void {
		for (let round = 0; round < maxRounds; round++) {
			const inbox: Message[] = [];
			for (const [id, core] of this.cores) {
				while (core.hasReady()) {
					const rd = core.ready();
					this.applied.get(id)!.push(...rd.committed);
					if (rd.readStates.length > 0) this.readStates.set(id, [...(this.readStates.get(id) ?? []), ...rd.readStates]);
					for (const m of rd.messages) {
						this.sent.push(m);
						if (this.cut.has(`${m.from}>${m.to}`) || !this.cores.has(m.to) || drop?.(m)) continue;
						if (m.type === "snapshot") inbox.push({ ...m, data: this.snapshots.get(m.from) ?? new Uint8Array() });
						else inbox.push(m);
					}
					core.advance(rd);
				}
			}
			if (inbox.length === 0) return;
			for (const m of inbox) this.cores.get(m.to)!.step(m);
		}
		throw new Error("network did not settle");
	}

	/** Tick every (or the given) node n times, settling after each tick. */
	tick(n: number, only?: string[]): void {
		for (let i = 0; i < n; i++) {
			for (const [id, core] of this.cores) if (!only || only.includes(id)) core.tick();
			this.settle();
		}
	}

	leaders(): string[] {
		return [...this.cores].filter(([, c]) => c.role === "leader").map(([id]) => id);
	}

	/** Tick until exactly one leader exists (bounded). */
	electLeader(maxTicks = 200): string {
		for (let i = 0; i < maxTicks; i++) {
			const ls = this.leaders();
			if (ls.length === 1) return ls[0]!;
			this.tick(1);
		}
		throw new Error(`no single leader after ${maxTicks} ticks: ${this.leaders().join(",")}`);
	}

	commandsApplied(id: string): string[] {
		return this.applied
			.get(id)!
			.filter((e) => e.type === "command")
			.map((e) => Buffer.from(e.data).toString());
	}
}

export const cmd = (s: string) => ({ type: "command" as const, data: Buffer.from(s) });
