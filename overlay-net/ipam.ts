// The allocator: VNIs, a subnet per network (from address pools, or given and validated), an
// address per task, a VIP per service, published ports. Pure and serializable: the control
// plane's store will hold its state; nothing here touches the kernel.
import { type Cidr, contains, intToIp, ipToInt, overlaps, parseCidr, size } from "./cidr.ts";
import {
	InvalidCidrError,
	NetworkExistsError,
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
	ports: Record<string, string>;
}

const VNI_MIN = 4096;
const VNI_MAX = 0xffffff;

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

	removeNetwork(id: string): void {
		const n = this.net(id);
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
		for (let i = 0; i <= VNI_MAX - VNI_MIN; i++) {
			const v = VNI_MIN + ((this.s.nextVni - VNI_MIN + i) % (VNI_MAX - VNI_MIN + 1));
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

	publishPort(port: number, owner: string): void {
		if (!Number.isInteger(port) || port < 1 || port > 65535)
			throw new InvalidCidrError(String(port), "not a TCP/UDP port");
		const cur = this.s.ports[String(port)];
		if (cur && cur !== owner) throw new PortConflictError(port, cur);
		this.s.ports[String(port)] = owner;
	}

	releasePort(port: number): void {
		delete this.s.ports[String(port)];
	}
}
