// One allocation pass as a pure function of the records: service endpoints (VIPs, published ports)
// first, then addresses for new tasks. The books are rebuilt from the records every pass, so the
// result depends only on the input, and a pass over its own output writes nothing.
import {
	isTerminal,
	type NetworkAttachment,
	type PortSpec,
	type Service,
	type ServiceEndpoint,
	type Task,
} from "../../services/index.ts";
import { PortInUseError } from "./errors.ts";
import { AddressPool, PortBook, portKey } from "./pools.ts";
import {
	ALLOCATED_MESSAGE,
	type AllocInput,
	type AllocOp,
	type AllocResult,
	DYNAMIC_PORTS,
	type Pending,
	type Versioned,
	WAITING_MESSAGE,
} from "./types.ts";

type Plan = { endpoint?: ServiceEndpoint; reason?: undefined } | { reason: string };

const byCreated = <T extends { createdAt: string }>(a: Versioned<T>, b: Versioned<T>) =>
	a.value.createdAt < b.value.createdAt ? -1 : a.value.createdAt > b.value.createdAt ? 1 : a.id < b.id ? -1 : 1;

const svcOwner = (id: string) => `service:${id}`;
const taskOwner = (id: string) => `task:${id}`;

/** Networks by id, name or unique id prefix (as `network inspect` resolves them). */
class Networks {
	readonly pools = new Map<string, AddressPool>();
	readonly ingress: AddressPool | undefined;

	constructor(records: AllocInput["networks"]) {
		for (const r of [...records].sort((a, b) => (a.id < b.id ? -1 : 1))) this.pools.set(r.id, new AddressPool(r));
		this.ingress = [...this.pools.values()].find((p) => p.ingress);
	}

	resolve(target: string): AddressPool | string {
		const exact = this.pools.get(target) ?? [...this.pools.values()].find((p) => p.name === target);
		if (exact) return exact;
		const prefixed = target.length >= 3 ? [...this.pools.values()].filter((p) => p.id.startsWith(target)) : [];
		if (prefixed.length === 1) return prefixed[0]!;
		if (prefixed.length > 1) return `network id prefix ${target} is ambiguous`;
		return `network ${target} not found`;
	}

	/** The spec's networks resolved and deduplicated, or the first reason one cannot be. */
	resolveAll(targets: ReadonlyArray<{ target: string; aliases: string[] }>): Array<[AddressPool, string[]]> | string {
		const out: Array<[AddressPool, string[]]> = [];
		for (const t of targets) {
			const p = this.resolve(t.target);
			if (typeof p === "string") return p;
			const had = out.find(([q]) => q === p);
			if (had) had[1].push(...t.aliases.filter((a) => !had[1].includes(a)));
			else out.push([p, [...t.aliases]]);
		}
		return out;
	}
}

const samePort = (a: PortSpec, b: PortSpec) =>
	a.protocol === b.protocol &&
	a.targetPort === b.targetPort &&
	a.publishMode === b.publishMode &&
	a.publishedPort === b.publishedPort;

const sameEndpoint = (a: ServiceEndpoint | undefined, b: ServiceEndpoint | undefined) => {
	const av = a?.vips ?? [];
	const bv = b?.vips ?? [];
	const ap = a?.ports ?? [];
	const bp = b?.ports ?? [];
	return (
		av.length === bv.length &&
		ap.length === bp.length &&
		av.every((v, i) => v.networkId === bv[i]!.networkId && v.addr === bv[i]!.addr) &&
		ap.every((p, i) => samePort(p, bp[i]!))
	);
};

const port = (p: PortSpec, publishedPort?: number): PortSpec => ({
	protocol: p.protocol,
	targetPort: p.targetPort,
	publishMode: p.publishMode,
	...(publishedPort !== undefined ? { publishedPort } : {}),
});

/** The pass's state: address pools, port book, service names (for reasons). */
class Pass {
	readonly nets: Networks;
	readonly ports = new PortBook();
	readonly names = new Map<string, string>();

	constructor(input: AllocInput, services: Array<Versioned<Service>>) {
		this.nets = new Networks(input.networks);
		// What the store says is held counts first: live tasks' addresses, then services' VIPs
		// and ports (oldest service first). A task that ended holds nothing: that is the release.
		for (const r of input.tasks) {
			const t = r.value;
			if (t.status.state === "new" || isTerminal(t.status.state)) continue;
			for (const a of t.networks) {
				const pool = this.nets.pools.get(a.networkId);
				if (!pool) continue;
				for (const addr of a.addresses) {
					const ip = pool.parse(addr);
					if (ip !== undefined) pool.claim(ip, taskOwner(r.id));
				}
			}
		}
		for (const r of services) {
			this.names.set(r.id, r.value.spec.name);
			for (const v of r.value.endpoint?.vips ?? []) {
				const pool = this.nets.pools.get(v.networkId);
				const ip = pool?.parse(v.addr);
				if (pool && ip !== undefined) pool.claim(ip, svcOwner(r.id));
			}
			for (const p of r.value.endpoint?.ports ?? [])
				if (p.publishedPort !== undefined) this.ports.claim(portKey(p.publishedPort, p.protocol), p.publishMode, r.id);
			for (const p of r.value.spec.endpoint.ports)
				if (p.publishedPort !== undefined) this.ports.want(portKey(p.publishedPort, p.protocol));
		}
	}

	/** The endpoint a service should have, reusing what it holds; on failure nothing new is held. */
	plan(r: Versioned<Service>): Plan {
		const s = r.value;
		const self = svcOwner(r.id);
		const taken: Array<() => void> = [];
		const fail = (reason: string): Plan => {
			for (const undo of taken.reverse()) undo();
			return { reason };
		};
		const nets = this.nets.resolveAll(s.spec.task.networks);
		if (typeof nets === "string") return fail(nets);
		const mesh = s.spec.endpoint.ports.some((p) => p.publishMode === "ingress");
		const ingress = this.nets.ingress;
		if (mesh && !ingress) return fail("published ports need the ingress network, and there is none");

		const vips: ServiceEndpoint["vips"] = [];
		if (s.spec.endpoint.mode === "vip") {
			const pools = [...(mesh && ingress ? [ingress] : []), ...nets.map(([p]) => p)];
			for (const pool of new Set(pools)) {
				const had = s.endpoint?.vips.find((v) => v.networkId === pool.id);
				let ip = had ? pool.parse(had.addr) : undefined;
				if (ip === undefined || pool.owner(ip) !== self) {
					ip = pool.take(self);
					if (ip === undefined) return fail(`no address available on network ${pool.name}`);
					const got = ip;
					taken.push(() => pool.release(got, self));
				}
				vips.push({ networkId: pool.id, addr: pool.cidr(ip) });
			}
		}

		const ports: PortSpec[] = [];
		const reused = new Set<PortSpec>();
		for (const p of s.spec.endpoint.ports) {
			if (p.publishedPort !== undefined) {
				const key = portKey(p.publishedPort, p.protocol);
				const other = this.ports.clash(key, p.publishMode, r.id);
				if (other !== undefined)
					return fail(new PortInUseError(p.publishedPort, p.protocol, this.names.get(other) ?? other).message);
				if (!this.ports.holds(key, p.publishMode, r.id)) {
					this.ports.claim(key, p.publishMode, r.id);
					taken.push(() => this.ports.release(key, p.publishMode, r.id));
				}
				ports.push(port(p, p.publishedPort));
				continue;
			}
			if (p.publishMode === "host") {
				ports.push(port(p));
				continue;
			}
			// A mesh port with no number keeps the one it was given (stable across updates).
			const had = (s.endpoint?.ports ?? []).find(
				(q) =>
					!reused.has(q) &&
					q.publishMode === "ingress" &&
					q.protocol === p.protocol &&
					q.targetPort === p.targetPort &&
					q.publishedPort !== undefined &&
					this.ports.holds(portKey(q.publishedPort, q.protocol), "ingress", r.id) &&
					!s.spec.endpoint.ports.some((x) => x.publishedPort === q.publishedPort && x.protocol === q.protocol),
			);
			if (had) {
				reused.add(had);
				ports.push(port(p, had.publishedPort));
				continue;
			}
			const n = this.ports.dynamic(p.protocol, r.id);
			if (n === undefined)
				return fail(`no free published port in ${DYNAMIC_PORTS.min}-${DYNAMIC_PORTS.max} for ${p.protocol}`);
			const key = portKey(n, p.protocol);
			taken.push(() => this.ports.release(key, "ingress", r.id));
			ports.push(port(p, n));
		}

		// What it held and no longer needs is free for the services after it.
		for (const v of s.endpoint?.vips ?? []) {
			if (vips.some((x) => x.networkId === v.networkId && x.addr === v.addr)) continue;
			const pool = this.nets.pools.get(v.networkId);
			const ip = pool?.parse(v.addr);
			if (pool && ip !== undefined) pool.release(ip, self);
		}
		for (const q of s.endpoint?.ports ?? [])
			if (q.publishedPort !== undefined && !ports.some((x) => samePort(x, q)))
				this.ports.release(portKey(q.publishedPort, q.protocol), q.publishMode, r.id);
		return vips.length > 0 || ports.length > 0 ? { endpoint: { vips, ports } } : {};
	}

	/** A new task's attachments (ingress first, as swarmkit), or why not; on failure nothing is held. */
	attach(r: Versioned<Task>, endpoint: ServiceEndpoint | undefined): NetworkAttachment[] | string {
		const nets = this.nets.resolveAll(r.value.spec.networks);
		if (typeof nets === "string") return nets;
		const ingress = this.nets.ingress;
		if (ingress && endpoint?.ports.some((p) => p.publishMode === "ingress") && !nets.some(([p]) => p === ingress))
			nets.unshift([ingress, []]);
		const owner = taskOwner(r.id);
		const out: NetworkAttachment[] = [];
		const held: Array<[AddressPool, number]> = [];
		for (const [pool, aliases] of nets) {
			const ip = pool.take(owner);
			if (ip === undefined) {
				for (const [p, i] of held) p.release(i, owner);
				return `no address available on network ${pool.name}`;
			}
			held.push([pool, ip]);
			out.push({ networkId: pool.id, addresses: [pool.cidr(ip)], aliases });
		}
		return out;
	}
}

/**
 * One allocation pass. Services (oldest first) get their endpoint: a VIP per network in vip mode
 * (the ingress network too when they publish mesh ports) and every published port; then each task
 * in state `new` whose service is allocated gets an address per network and moves to `pending`.
 * What cannot be allocated is returned as pending with its reason, and a waiting task carries it in
 * `status.err` (written only when it changes).
 */
export function allocate(input: AllocInput): AllocResult {
	const services = [...input.services].sort(byCreated);
	const pass = new Pass(input, services);
	const ops: AllocOp[] = [];
	const pending: Pending[] = [];
	const plans = new Map<string, Plan>();

	for (const r of services) plans.set(r.id, pass.plan(r));
	// A second try for those that failed: a service planned after them may have let go of what they need.
	for (const r of services) if (plans.get(r.id)?.reason !== undefined) plans.set(r.id, pass.plan(r));

	for (const r of services) {
		const plan = plans.get(r.id)!;
		if (plan.reason !== undefined) {
			pending.push({ table: "services", id: r.id, reason: plan.reason });
			continue;
		}
		if (sameEndpoint(plan.endpoint, r.value.endpoint)) continue;
		const { endpoint: _old, ...rest } = r.value;
		const value: Service = plan.endpoint ? { ...rest, endpoint: plan.endpoint } : rest;
		ops.push({ op: "update", table: "services", id: r.id, version: r.version, value });
	}

	const timestamp = new Date(input.now).toISOString();
	const byId = new Map(services.map((r) => [r.id, r]));
	for (const r of [...input.tasks].sort(byCreated)) {
		const t = r.value;
		if (t.status.state !== "new" || t.desiredState === "shutdown" || t.desiredState === "remove") continue;
		const plan = plans.get(t.serviceId);
		if (!byId.has(t.serviceId) || !plan) continue;
		const got = plan.reason ?? pass.attach(r, plan.endpoint);
		if (typeof got !== "string") {
			const value: Task = {
				...t,
				networks: got,
				status: { state: "pending", message: ALLOCATED_MESSAGE, timestamp },
			};
			ops.push({ op: "update", table: "tasks", id: r.id, version: r.version, value });
			continue;
		}
		pending.push({ table: "tasks", id: r.id, reason: got });
		if (t.status.err === got) continue;
		const value: Task = { ...t, status: { ...t.status, message: WAITING_MESSAGE, err: got, timestamp } };
		ops.push({ op: "update", table: "tasks", id: r.id, version: r.version, value });
	}
	return { ops, pending };
}
