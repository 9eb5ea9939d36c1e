// In-memory books of one pass: who holds which address on each network and which published port.
// Rebuilt from the records every pass (nothing to free: a record that stops counting releases).
import { intToIp, ipToInt, parseCidr } from "../../../overlay-net/ipam/index.ts";
import { nodeReserve } from "./node-addresses.ts";
import { type AllocNetwork, DYNAMIC_PORTS, type Versioned } from "./types.ts";

/** Host addresses of one network: lowest free first, with a cursor so a pass stays linear. */
export class AddressPool {
	readonly id: string;
	readonly name: string;
	readonly ingress: boolean;
	private prefix = 32;
	private first = 1;
	private last = 0;
	/** Every address in [first, cursor) is held. */
	private cursor = 1;
	private owners = new Map<number, string>();

	constructor(r: Versioned<AllocNetwork>) {
		this.id = r.id;
		this.name = r.value.name;
		this.ingress = r.value.ingress === true;
		try {
			const c = parseCidr(r.value.subnet);
			this.prefix = c.prefix;
			this.first = c.base + 1;
			// On ingress the top of the subnet is the nodes' own endpoints' (node-addresses.ts).
			this.last = c.base + 2 ** (32 - c.prefix) - 2 - (this.ingress ? nodeReserve(c.prefix) : 0);
			this.cursor = this.first;
			this.owners.set(ipToInt(r.value.gateway), "gateway");
		} catch {
			// A record we cannot read has no addresses to give (first > last): exhaustion says so.
		}
	}

	/** The address of a stored "a.b.c.d/nn" if it is a host address of this network, else undefined. */
	parse(cidr: string): number | undefined {
		const [ip, prefix] = cidr.split("/");
		if (Number(prefix) !== this.prefix) return undefined;
		try {
			const n = ipToInt(ip ?? "");
			return n >= this.first && n <= this.last ? n : undefined;
		} catch {
			return undefined;
		}
	}

	owner(ip: number): string | undefined {
		return this.owners.get(ip);
	}

	/** Records an address already held (from the store); false if it is not free. */
	claim(ip: number, owner: string): boolean {
		if (ip < this.first || ip > this.last || this.owners.has(ip)) return false;
		this.owners.set(ip, owner);
		return true;
	}

	/** The lowest free address, now held by `owner`; undefined when the network is full. */
	take(owner: string): number | undefined {
		while (this.cursor <= this.last && this.owners.has(this.cursor)) this.cursor++;
		if (this.cursor > this.last) return undefined;
		this.owners.set(this.cursor, owner);
		return this.cursor;
	}

	release(ip: number, owner: string): void {
		if (this.owners.get(ip) !== owner) return;
		this.owners.delete(ip);
		if (ip < this.cursor) this.cursor = ip;
	}

	cidr(ip: number): string {
		return `${intToIp(ip)}/${this.prefix}`;
	}
}

export type PortProto = "tcp" | "udp";
export const portKey = (port: number, protocol: PortProto) => `${port}/${protocol}`;

/**
 * Published ports, cluster-wide. A routing-mesh (ingress) port belongs to one service; a mode=host
 * port may be shared (the scheduler keeps those apart per node) but never with a mesh port, since the
 * mesh answers on every node. Ports some spec asks for explicitly are never handed out dynamically.
 */
export class PortBook {
	private mesh = new Map<string, string>();
	private host = new Map<string, Set<string>>();
	private wanted = new Set<string>();

	/** A port some spec names explicitly (kept out of the dynamic range's choices). */
	want(key: string): void {
		this.wanted.add(key);
	}

	/** The other service holding `key` in a way that clashes with `mode`, if any. */
	clash(key: string, mode: "ingress" | "host", self: string): string | undefined {
		const m = this.mesh.get(key);
		if (m !== undefined && m !== self) return m;
		if (mode === "ingress") for (const h of this.host.get(key) ?? []) if (h !== self) return h;
		return undefined;
	}

	/** Holds `key` for `self`; false if it clashes. */
	claim(key: string, mode: "ingress" | "host", self: string): boolean {
		if (this.clash(key, mode, self) !== undefined) return false;
		if (mode === "ingress") this.mesh.set(key, self);
		else {
			const s = this.host.get(key) ?? new Set();
			s.add(self);
			this.host.set(key, s);
		}
		return true;
	}

	holds(key: string, mode: "ingress" | "host", self: string): boolean {
		return mode === "ingress" ? this.mesh.get(key) === self : (this.host.get(key)?.has(self) ?? false);
	}

	release(key: string, mode: "ingress" | "host", self: string): void {
		if (mode === "ingress") {
			if (this.mesh.get(key) === self) this.mesh.delete(key);
		} else this.host.get(key)?.delete(self);
	}

	/** The lowest port of the dynamic range nobody holds or asks for, now held by `self`. */
	dynamic(protocol: PortProto, self: string): number | undefined {
		for (let p = DYNAMIC_PORTS.min; p <= DYNAMIC_PORTS.max; p++) {
			const key = portKey(p, protocol);
			if (this.wanted.has(key) || this.mesh.has(key) || (this.host.get(key)?.size ?? 0) > 0) continue;
			this.mesh.set(key, self);
			return p;
		}
		return undefined;
	}
}
