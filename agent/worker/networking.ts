// A task's place on overlay networks: one network namespace per task (named from its id), one
// endpoint per attachment with the address the allocator gave it, the first network's resolver in
// its /etc/resolv.conf. The container joins the namespace by path. Networks are built on this node
// when a task first needs them and removed when the last task using them is gone. The leader's
// network views (views.ts) program the rest: remote endpoints, VIPs, DNS, the routing mesh.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import {
	type NetworkAlloc,
	nodeUpstreams,
	type OverlayDriver,
	resolvConf,
	type TaskEndpoint,
} from "../../overlay-net/index.ts";
import type { MeshView, NetworkView } from "../dispatch/index.ts";
import type { NetworkAttachment, Task } from "../services/index.ts";
import { InvalidAssignmentError } from "./errors.ts";
import { ViewState } from "./views.ts";

const execFileP = promisify(execFile);

/**
 * A network as the dispatcher sends it with the tasks that use it: the allocator's record (no
 * address book: each task carries its own addresses) and the nodes on it.
 */
export type AssignedNetwork = Omit<NetworkAlloc, "addresses"> & {
	/** Underlay addresses of the nodes on this network (VXLAN flood list); default none. */
	peers?: string[];
};

export interface NetworkingOptions {
	driver: OverlayDriver;
	/** Task namespaces are PREFIX-TASKID (default "tsw-task"): unique per node. */
	netnsPrefix?: string;
	/**
	 * At start, make the kernel match the persisted assignments (driver.reconcile: rebuilds broken
	 * sandboxes, re-plugs missing task endpoints, removes sandboxes of this prefix no task wants).
	 * It also rewrites the driver's mesh and host-port tables (to none), so the agent publishes after
	 * the worker has started. Default true.
	 */
	reconcileOnStart?: boolean;
	/** Where the networks' DNS servers send names that are not services (default: the node's resolvers). */
	dnsUpstreams?: string[];
}

const alloc = ({ peers: _, ...n }: AssignedNetwork): NetworkAlloc => ({ ...n, addresses: {} });

/** "198.19.1.5/24" -> "198.19.1.5" (the driver adds the network's prefix). */
const bare = (a: string) => a.split("/")[0]!;

export class TaskNetworking {
	private readonly driver: OverlayDriver;
	private readonly prefix: string;
	private readonly filesDir: string;
	readonly reconcileOnStart: boolean;
	/** Network ids built on this node by this worker. */
	private readonly built = new Set<string>();
	private lock: Promise<unknown> = Promise.resolve();
	/** The views and mesh as last given, and what of them the kernel has. */
	readonly views: ViewState;

	constructor(o: NetworkingOptions, filesDir: string) {
		this.driver = o.driver;
		this.prefix = o.netnsPrefix ?? "tsw-task";
		this.filesDir = filesDir;
		this.reconcileOnStart = o.reconcileOnStart ?? true;
		let upstreams = o.dnsUpstreams;
		if (!upstreams) {
			try {
				upstreams = nodeUpstreams();
			} catch {
				upstreams = [];
			}
		}
		this.views = new ViewState(o.driver, upstreams);
	}

	netnsName(taskId: string): string {
		return `${this.prefix}-${taskId}`;
	}

	netnsPath(taskId: string): string {
		return `/run/netns/${this.netnsName(taskId)}`;
	}

	/** One kernel change at a time: building a network and plugging tasks into it must not interleave. */
	private serial<T>(fn: () => Promise<T>): Promise<T> {
		const next = this.lock.then(fn, fn);
		this.lock = next.catch(() => {});
		return next;
	}

	private networksOf(
		task: Task,
		nets: ReadonlyMap<string, AssignedNetwork>,
	): Array<[NetworkAttachment, AssignedNetwork]> {
		return task.networks.map((a) => {
			const n = nets.get(a.networkId);
			if (!n)
				throw new InvalidAssignmentError(
					`task ${task.id} is attached to network ${a.networkId}, which the assignment does not carry`,
				);
			if (a.addresses.length === 0)
				throw new InvalidAssignmentError(`task ${task.id} has no address on network ${a.networkId}`);
			return [a, n];
		});
	}

	/** Checks a task's attachments against the networks of an assignment (throws InvalidAssignmentError). */
	check(task: Task, nets: ReadonlyMap<string, AssignedNetwork>): void {
		this.networksOf(task, nets);
	}

	private async ensureNetwork(n: AssignedNetwork): Promise<void> {
		if (this.built.has(n.id)) return;
		const a = alloc(n);
		// A sandbox left by an earlier run that reconcile did not take over: rebuild it whole.
		if (existsSync(`/run/netns/${this.driver.sandbox(a)}`)) await this.driver.deleteNetwork(a);
		await this.driver.createNetwork(a);
		if (n.peers?.length) await this.driver.setPeers(a, n.peers);
		this.built.add(n.id);
		await this.views.applyNetwork(n, true);
	}

	/**
	 * New network views and mesh from the leader: applied to the networks built here; the mesh
	 * builds the ingress network on this node (every node publishes every ingress port) and plugs
	 * the node's own endpoint into it.
	 */
	setViews(views: ReadonlyMap<string, NetworkView>, mesh: MeshView, nets: ReadonlyMap<string, AssignedNetwork>) {
		return this.serial(async () => {
			this.views.set(views, mesh);
			for (const id of this.built) {
				const n = nets.get(id);
				if (n) await this.views.applyNetwork(n, false);
			}
			const ingress = mesh.networkId ? nets.get(mesh.networkId) : undefined;
			if (mesh.ports.length > 0 && ingress) {
				await this.ensureNetwork(ingress);
				await this.views.applyMesh(ingress);
			} else await this.views.applyMesh(undefined);
		});
	}

	/** A fresh namespace for the task, plugged into each of its networks: what the container joins. */
	attach(task: Task, nets: ReadonlyMap<string, AssignedNetwork>): Promise<{ netns: string; resolvConf?: string }> {
		const pairs = this.networksOf(task, nets);
		return this.serial(async () => {
			await this.dropNetns(
				task.id,
				pairs.map(([, n]) => n),
			);
			const ns = this.netnsName(task.id);
			await execFileP("ip", ["netns", "add", ns]);
			try {
				for (const [k, [a, n]] of pairs.entries()) {
					await this.ensureNetwork(n);
					await this.driver.attachTask(alloc(n), ns, bare(a.addresses[0]!), `eth${k}`);
				}
			} catch (err) {
				await this.dropNetns(
					task.id,
					pairs.map(([, n]) => n),
				).catch(() => {});
				throw err;
			}
			const dns = pairs.find(([, n]) => !n.ingress)?.[1];
			if (!dns) return { netns: this.netnsPath(task.id) };
			const dir = join(this.filesDir, task.id);
			mkdirSync(dir, { recursive: true });
			const file = join(dir, "resolv.conf");
			writeFileSync(file, resolvConf(dns.gateway));
			return { netns: this.netnsPath(task.id), resolvConf: file };
		});
	}

	private async dropNetns(taskId: string, nets: AssignedNetwork[]): Promise<void> {
		const ns = this.netnsName(taskId);
		if (!existsSync(`/run/netns/${ns}`)) return;
		for (const n of nets) if (this.built.has(n.id)) await this.driver.detachTask(alloc(n), ns);
		await execFileP("ip", ["netns", "delete", ns]).catch((err: Error) => {
			if (existsSync(`/run/netns/${ns}`)) throw err;
		});
	}

	/** Unplugs the task and deletes its namespace and files (idempotent). */
	detach(task: Task, nets: ReadonlyMap<string, AssignedNetwork>): Promise<void> {
		const known = task.networks.flatMap((a) => nets.get(a.networkId) ?? []);
		return this.serial(async () => {
			await this.dropNetns(task.id, known);
			rmSync(join(this.filesDir, task.id), { recursive: true, force: true });
		});
	}

	/** Removes the networks this worker built that no task uses any more. */
	release(
		inUse: ReadonlySet<string>,
		nets: ReadonlyMap<string, AssignedNetwork>,
		gone: ReadonlyMap<string, AssignedNetwork>,
	): Promise<void> {
		return this.serial(async () => {
			for (const id of [...this.built]) {
				if (inUse.has(id) || this.views.holds(id)) continue;
				const n = nets.get(id) ?? gone.get(id);
				if (n) await this.driver.deleteNetwork(alloc(n));
				this.built.delete(id);
				this.views.dropped(id);
			}
		});
	}

	/** After a restart: the kernel made to match what was persisted (see reconcileOnStart). */
	reconcile(
		tasks: Task[],
		nets: ReadonlyMap<string, AssignedNetwork>,
		views: ReadonlyMap<string, NetworkView> = new Map(),
		mesh: MeshView = { ports: [] },
	): Promise<void> {
		return this.serial(async () => {
			this.views.set(views, mesh);
			const used = new Map<string, AssignedNetwork>();
			const ingress = mesh.networkId ? nets.get(mesh.networkId) : undefined;
			const meshOn = mesh.ports.length > 0 && ingress !== undefined;
			if (meshOn) used.set(ingress.id, ingress);
			const endpoints: TaskEndpoint[] = [];
			for (const t of tasks) {
				for (const [k, a] of t.networks.entries()) {
					const n = nets.get(a.networkId);
					if (!n || a.addresses.length === 0) continue;
					used.set(n.id, n);
					endpoints.push({
						network: alloc(n),
						netns: this.netnsName(t.id),
						address: bare(a.addresses[0]!),
						ifname: `eth${k}`,
					});
				}
			}
			const byVni = new Map([...used.values()].map((n) => [n.vni, n]));
			const view = (a: NetworkAlloc) => {
				const n = byVni.get(a.vni);
				return n ? views.get(n.id) : undefined;
			};
			await this.driver.reconcile(
				[...used.values()].map(alloc),
				(a) => view(a)?.peers ?? byVni.get(a.vni)?.peers ?? [],
				meshOn ? this.views.meshRules(alloc(ingress)) : undefined,
				{
					tasks: endpoints,
					endpoints: (a) => view(a)?.endpoints ?? [],
					vips: (a) => (byVni.get(a.vni)?.ingress ? [] : this.views.vipRules(view(a))),
					nodeEndpoints: meshOn && mesh.address ? [{ network: alloc(ingress), address: mesh.address }] : [],
				},
			);
			for (const n of used.values()) {
				this.built.add(n.id);
				await this.views.adopted(n, meshOn && n.id === ingress.id ? mesh.address : undefined);
			}
		});
	}
}
