// Identity is the key, not the address: a node that comes back on a new IP (DHCP) is found by its
// peer id. Membership's alive statements are signed by the node itself and carry its advertised
// addresses: they go to the libp2p peer store (every dial to a member is by id), and on the leader
// into the node's record, so the directory, `node ls` and the workers' copies follow the node.
import { validAddr } from "./record.ts";

/** A member as membership reports it (agent/membership's Member, narrowed). */
export interface MemberView {
	id: string;
	/** ip:port the member signed as its own (membership UDP and libp2p TCP share it). */
	addr: string;
	state: string;
	meta: { addresses?: string[] };
}

export interface MemberSource {
	all(): MemberView[];
	on(event: "join" | "alive" | "update", listener: (m: MemberView) => void): unknown;
	off(event: "join" | "alive" | "update", listener: (m: MemberView) => void): unknown;
}

export interface AddressLogger {
	info(obj: object, msg?: string): void;
	warn(obj: object, msg?: string): void;
}

export interface AddressFollowerOptions {
	self: string;
	/** The libp2p host: its peer store learns where each member is now. */
	host: { learnAddrs(id: string, addrs: readonly string[]): Promise<boolean> };
	/** Members only: a gossiped statement of a peer id outside the directory is not followed. */
	directory: {
		get(id: string): { addr: string } | undefined;
		on(event: "changed", listener: () => void): unknown;
		off(event: "changed", listener: () => void): unknown;
	};
	members: MemberSource;
	/**
	 * Where a node's record address is written, when this node may write it now (the leader);
	 * undefined otherwise. Called only with the member's own signed address.
	 */
	recordWriter: () => ((id: string, addr: string) => Promise<void>) | undefined;
	logger: AddressLogger;
	/** How often everything is checked again (a new leader, a missed event); default 2 s. */
	intervalMs?: number;
}

/** The multiaddrs a member's statement says it listens at: its meta's, else its addr's. */
export function memberAddrs(m: MemberView): string[] {
	const ma = (m.meta.addresses ?? []).filter((a) => typeof a === "string" && a.startsWith("/ip4/"));
	return ma.length > 0 ? ma : validAddr(m.addr) ? [m.addr] : [];
}

export class AddressFollower {
	private readonly o: AddressFollowerOptions;
	private timer: NodeJS.Timeout | undefined;
	/** What the peer store was last given per member (its statement's addresses). */
	private readonly learned = new Map<string, string>();
	/** Record writes under way, by node id. */
	private readonly writing = new Set<string>();
	private readonly onMember = (m: MemberView) => this.follow(m);
	private readonly onDirectory = () => this.check();

	constructor(o: AddressFollowerOptions) {
		this.o = o;
	}

	start(): void {
		for (const ev of ["join", "alive", "update"] as const) this.o.members.on(ev, this.onMember);
		this.o.directory.on("changed", this.onDirectory);
		const tick = () => {
			this.check();
			this.timer = setTimeout(tick, this.o.intervalMs ?? 2000);
			this.timer.unref();
		};
		tick();
	}

	stop(): void {
		clearTimeout(this.timer);
		for (const ev of ["join", "alive", "update"] as const) this.o.members.off(ev, this.onMember);
		this.o.directory.off("changed", this.onDirectory);
	}

	/** Every alive member once. */
	check(): void {
		for (const m of this.o.members.all()) this.follow(m);
	}

	private follow(m: MemberView): void {
		if (m.state !== "alive") return;
		const entry = this.o.directory.get(m.id);
		if (!entry) return;
		if (m.id !== this.o.self) this.learn(m);
		if (entry.addr !== m.addr && validAddr(m.addr)) this.record(m.id, entry.addr, m.addr);
	}

	private learn(m: MemberView): void {
		const addrs = memberAddrs(m);
		const key = addrs.join(" ");
		if (addrs.length === 0 || this.learned.get(m.id) === key) return;
		this.learned.set(m.id, key);
		this.o.host
			.learnAddrs(m.id, addrs)
			.then((changed) => {
				if (changed) this.o.logger.info({ member: m.id, addrs }, "peer addresses updated from membership");
			})
			.catch((err: Error) => {
				this.learned.delete(m.id);
				this.o.logger.warn({ member: m.id, err: err.message }, "could not update the peer's addresses");
			});
	}

	private record(id: string, from: string, to: string): void {
		const write = this.o.recordWriter();
		if (!write || this.writing.has(id)) return;
		this.writing.add(id);
		write(id, to)
			.then(() => this.o.logger.info({ node: id, from, to }, "node address changed: its record follows it"))
			.catch((err: Error) =>
				this.o.logger.warn({ node: id, to, err: err.message }, "could not update the node's address"),
			)
			.finally(() => this.writing.delete(id));
	}
}
