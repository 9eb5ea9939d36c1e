// The allocator: VNIs, a subnet per network (from address pools, or given and validated), an
// address per task, a VIP per service, published ports. Pure and serializable: the control
// plane's store will hold its state; nothing here touches the kernel.
import { type Cidr, contains, intToIp, ipToInt, overlaps, parseCidr, size } from "./cidr.ts";
import {
	InvalidCidrError,
	InvalidPortError,
	NetworkExistsError,
	NetworkInUseError,
	NetworkNotFoundError,
	PoolExhaustedError,
	PortConflictError,
	SubnetOverlapError,
} from "./errors.ts";

export interface NetworkAlloc {
	id: string;
	name: string;
	vni: number;
	subnet: string;
	gateway: string;
	internal: boolean;
	/** The routing mesh's network: nodes attach to it themselves, and it has no way out of its own. */
	ingress?: boolean;
	/** address -> owner (task or service id); the gateway is reserved. */
	addresses: Record<string, string>;
}

export interface AllocatorState {
	pools: string[];
	subnetPrefix: number;
	nextVni: number;
	networks: Record<string, NetworkAlloc>;
	/** Published ports: "PORT" (tcp, routing mesh), "PORT/udp", and "PORT[/udp]@NODE" for mode=host. */
	ports: Record<string, string>;
	/** The VNI range (default 4096..16777215); smaller ranges are for tests. */
	vniMin?: number;
	vniMax?: number;
}

const VNI_MIN = 4096;
const VNI_MAX = 0xffffff;

export interface PortOptions {
	protocol?: "tcp" | "udp";
	/** "ingress" (default): every node answers (routing mesh); "host": only `node` does. */
	mode?: "ingress" | "host";
	/** The node of a mode=host port. */
	node?: string;
}

const portKey = (port: number, o: PortOptions) =>
	`${port}${o.protocol === "udp" ? "/udp" : ""}${o.mode === "host" ? `@${o.node}` : ""}`;

export class Allocator {
	private s: AllocatorState;

	constructor(state?: Partial<AllocatorState>) {
		this.s = { pools: ["10.0.0.0/8"], subnetPrefix: 24, nextVni: VNI_MIN, networks: {}, ports: {}, ...state };
		for (const p of this.s.pools) parseCidr(p);
	}

	toJSON(): AllocatorState {
		return structuredClone(this.s);
	}

	networks(): NetworkAlloc[] {
		return Object.values(this.s.networks);
	}

	private net(id: string): NetworkAlloc {
		const n = this.s.networks[id] ?? Object.values(this.s.networks).find((x) => x.name === id);
		if (!n) throw new NetworkNotFoundError(id);
		return n;
	}

	createNetwork(o: {
		id: string;
		name: string;
		subnet?: string;
		gateway?: string;
		internal?: boolean;
		ingress?: boolean;
	}): NetworkAlloc {
		if (Object.values(this.s.networks).some((n) => n.name === o.name)) throw new NetworkExistsError(o.name);
		if (this.s.networks[o.id]) throw new NetworkExistsError(`${o.id} (by id)`);
		const subnet = o.subnet ? this.checkSubnet(parseCidr(o.subnet)) : this.freeSubnet();
		if (size(subnet) < 4) throw new InvalidCidrError(subnet.text, "too small for a gateway and a task");
		const gateway = o.gateway ?? intToIp(subnet.base + 1);
		const g = ipToInt(gateway);
		if (!contains(subnet, g) || g === subnet.base || g === subnet.base + size(subnet) - 1) {
			throw new InvalidCidrError(subnet.text, `gateway ${gateway} is not a host address of the subnet`);
		}
		const vni = this.freeVni();
		const n: NetworkAlloc = {
			id: o.id,
			name: o.name,
			vni,
			subnet: subnet.text,
			gateway,
			internal: o.internal ?? false,
			...(o.ingress ? { ingress: true } : {}),
			addresses: { [gateway]: "gateway" },
		};
		this.s.networks[o.id] = n;
		return n;
	}

	/** Refuses (NetworkInUseError) while tasks or VIPs hold addresses, unless `force`. */
	removeNetwork(id: string, o: { force?: boolean } = {}): void {
		const n = this.net(id);
		const owners = Object.values(n.addresses).filter((x) => x !== "gateway");
		if (owners.length > 0 && !o.force) throw new NetworkInUseError(n.name, owners);
		delete this.s.networks[n.id];
	}

	private checkSubnet(c: Cidr): Cidr {
		for (const n of Object.values(this.s.networks)) {
			if (overlaps(c, parseCidr(n.subnet))) throw new SubnetOverlapError(c.text, n.subnet, n.name);
		}
		return c;
	}

	private freeSubnet(): Cidr {
		const step = 2 ** (32 - this.s.subnetPrefix);
		const used = Object.values(this.s.networks).map((n) => parseCidr(n.subnet));
		for (const p of this.s.pools.map(parseCidr)) {
			for (let base = p.base; base + step <= p.base + size(p); base += step) {
				const c: Cidr = { base, prefix: this.s.subnetPrefix, text: `${intToIp(base)}/${this.s.subnetPrefix}` };
				if (!used.some((u) => overlaps(u, c))) return c;
			}
		}
		throw new PoolExhaustedError(`/${this.s.subnetPrefix} subnet in the pools ${this.s.pools.join(", ")}`);
	}

	private freeVni(): number {
		const used = new Set(Object.values(this.s.networks).map((n) => n.vni));
		const min = this.s.vniMin ?? VNI_MIN;
		const max = this.s.vniMax ?? VNI_MAX;
		for (let i = 0; i <= max - min; i++) {
			const v = min + ((((this.s.nextVni - min + i) % (max - min + 1)) + (max - min + 1)) % (max - min + 1));
			if (!used.has(v)) {
				this.s.nextVni = v + 1;
				return v;
			}
		}
		throw new PoolExhaustedError("VNI");
	}

	/** An address in the network for a task or a service VIP (owner), lowest free first. */
	allocateAddress(networkId: string, owner: string): string {
		const n = this.net(networkId);
		const c = parseCidr(n.subnet);
		for (let ip = c.base + 1; ip < c.base + size(c) - 1; ip++) {
			const a = intToIp(ip);
			if (!n.addresses[a]) {
				n.addresses[a] = owner;
				return a;
			}
		}
		throw new PoolExhaustedError(`address in ${n.name} (${n.subnet})`);
	}

	releaseAddress(networkId: string, address: string): void {
		const n = this.net(networkId);
		if (n.addresses[address] !== "gateway") delete n.addresses[address];
	}

	/**
	 * Reserves a published port for `owner`. A routing-mesh port is cluster-wide: it conflicts with
	 * the same port and protocol anywhere; a mode=host port conflicts with a mesh port and with a
	 * host port on the same node. tcp and udp are separate.
	 */
	publishPort(port: number, owner: string, o: PortOptions = {}): void {
		if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidPortError(port);
		const protocol = o.protocol ?? "tcp";
		if (protocol !== "tcp" && protocol !== "udp")
			throw new InvalidPortError(port, `protocol ${protocol} is not tcp or udp`);
		if (o.mode === "host" && !o.node) throw new InvalidPortError(port, "a mode=host port needs its node");
		const opts = { ...o, protocol };
		const mesh = portKey(port, { protocol });
		const clash = (k: string) => {
			const cur = this.s.ports[k];
			if (cur && cur !== owner)
				throw new PortConflictError(port, k.includes("@") ? `${cur} (mode=host on ${k.split("@")[1]})` : cur, protocol);
		};
		clash(mesh);
		if (o.mode === "host") clash(portKey(port, opts));
		else for (const k of Object.keys(this.s.ports)) if (k.startsWith(`${mesh}@`)) clash(k);
		this.s.ports[portKey(port, opts)] = owner;
	}

	releasePort(port: number, o: PortOptions = {}): void {
		delete this.s.ports[portKey(port, o)];
	}
}
