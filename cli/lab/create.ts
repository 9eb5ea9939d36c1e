// Building a lab: a hub namespace holding one bridge, and one namespace per node joined to it by a
// veth pair (eth0 inside the node). Nothing is created in the host's own namespace, so the host's
// firewall and bridge-netfilter settings cannot interfere and deleting the namespaces removes all.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { assignPlatforms, checkPlatformsRunnable } from "./agents.ts";
import { formCluster } from "./cluster.ts";
import { destroyRecord, isStale, sweepStaleLabs } from "./destroy.ts";
import { LabError, LabExistsError } from "./errors.ts";
import {
	hubNetns,
	MAX_NODES,
	nodeAddress,
	nodeName,
	nodeNetns,
	REGISTRY_ADDRESS,
	REGISTRY_NODE,
	REGISTRY_PORT,
	UNDERLAY_PREFIX,
	validateLabName,
} from "./names.ts";
import { ipBatch, run } from "./shell.ts";
import { identify, type LabNode, type LabRecord, labDir, labRoot, readRecord, writeRecord } from "./state.ts";

export interface CreateLabOptions {
	name: string;
	nodes: number;
	root?: string;
	/** Start the lab's OCI registry at 198.18.0.254:5000, seeded with the test images. */
	registry?: boolean;
	/** Start an agent in every node and form a cluster: init on n1, the others joined. */
	cluster?: boolean;
	/** Platforms the nodes' agents run as, round robin (default: this machine's); needs `cluster`. */
	platforms?: string[];
	/** Zone labels of the nodes' agents, round robin (`--label zone=Z`); needs `cluster`. */
	zones?: string[];
	/** How many nodes init/join with the manager token (default 3, the rest workers); needs `cluster`. */
	managers?: number;
	/** Keep the lab after this process exits (until `lab down`). */
	persistent?: boolean;
	signal?: AbortSignal;
	onProgress?: (message: string) => void;
}

const HUB_BRIDGE = "hub";

export async function createLab(opts: CreateLabOptions): Promise<LabRecord> {
	const name = validateLabName(opts.name);
	if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) {
		throw new LabError(`--nodes must be an integer from 1 to ${MAX_NODES}, got ${opts.nodes}`, "ERR_LAB_NODES");
	}
	if (opts.platforms?.length && !opts.cluster)
		throw new LabError("--platforms needs --cluster: it says what each node's agent runs as", "ERR_LAB_PLATFORM");
	const platforms = opts.cluster ? assignPlatforms(opts.nodes, opts.platforms) : [];
	if ((opts.zones?.length || opts.managers !== undefined) && !opts.cluster)
		throw new LabError("--zones and --managers need --cluster: they say how each node's agent joins", "ERR_LAB_ZONES");
	const badZone = opts.zones?.find((z) => !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(z));
	if (badZone !== undefined) throw new LabError(`zone "${badZone}" is not a valid label value`, "ERR_LAB_ZONES");
	if (opts.managers !== undefined && (!Number.isInteger(opts.managers) || opts.managers < 1))
		throw new LabError(`--managers must be at least 1, got ${opts.managers}`, "ERR_LAB_ZONES");
	checkPlatformsRunnable(platforms);
	const root = opts.root ?? labRoot();
	const progress = opts.onProgress ?? (() => {});
	await sweepStaleLabs({ root });
	const existing = readRecord(root, name);
	if (existing && !isStale(existing)) throw new LabExistsError(name);

	const dir = labDir(root, name);
	const owner = identify(process.pid);
	if (!owner) throw new LabError("cannot read this process's identity from /proc", "ERR_LAB_PROC");
	const nodes: LabNode[] = [];
	for (let k = 1; k <= opts.nodes; k++) {
		const n = nodeName(k);
		const node: LabNode = { name: n, netns: nodeNetns(name, n), address: nodeAddress(k), dir: join(dir, "nodes", n) };
		if (opts.cluster) node.platform = platforms[k - 1];
		if (opts.zones?.length) node.zone = opts.zones[(k - 1) % opts.zones.length]!;
		nodes.push(node);
	}
	const rec: LabRecord = {
		version: 1,
		name,
		createdAt: new Date().toISOString(),
		owner,
		persistent: false,
		status: "creating",
		dir,
		hubNetns: hubNetns(name),
		nodes,
		...(opts.cluster ? { cluster: true } : {}),
		...(opts.managers !== undefined ? { managers: opts.managers } : {}),
		processes: [],
	};
	if (opts.registry) {
		rec.registry = {
			netns: nodeNetns(name, REGISTRY_NODE),
			address: REGISTRY_ADDRESS,
			port: REGISTRY_PORT,
			dataDir: join(dir, "registry"),
			url: `http://${REGISTRY_ADDRESS}:${REGISTRY_PORT}`,
		};
	}
	// The record goes to disk before any kernel object exists: a crash from here on is sweepable.
	writeRecord(root, rec);
	try {
		opts.signal?.throwIfAborted();
		progress(`creating ${nodes.length} node namespaces and the hub bridge`);
		const members = [...nodes.map((n) => ({ netns: n.netns, address: n.address, port: n.name }))];
		if (rec.registry) members.push({ netns: rec.registry.netns, address: rec.registry.address, port: "reg" });
		await ipBatch(
			[rec.hubNetns, ...members.map((m) => m.netns)].map((ns) => `netns add ${ns}`),
			opts,
		);
		// Bridged frames must not pass through the host's iptables (Docker sets FORWARD to DROP).
		await run(["ip", "netns", "exec", rec.hubNetns, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0"], {
			allowFailure: true,
		});
		await ipBatch(
			[
				"link set lo up",
				`link add ${HUB_BRIDGE} type bridge`,
				`link set ${HUB_BRIDGE} up`,
				...members.flatMap((m) => [
					`link add ${m.port} type veth peer name eth0 netns ${m.netns}`,
					`link set ${m.port} master ${HUB_BRIDGE}`,
					`link set ${m.port} up`,
				]),
			],
			{ netns: rec.hubNetns, signal: opts.signal },
		);
		await Promise.all(
			members.map((m) =>
				ipBatch(["link set lo up", `addr add ${m.address}/${UNDERLAY_PREFIX} dev eth0`, "link set eth0 up"], {
					netns: m.netns,
					signal: opts.signal,
				}),
			),
		);
		for (const n of nodes) mkdirSync(n.dir, { recursive: true });
		if (rec.registry) {
			progress(`starting the registry at ${rec.registry.url} and pushing the test images`);
			await startRegistry(rec, opts.signal);
		}
		if (opts.cluster) await formCluster(root, rec, { signal: opts.signal, onProgress: progress });
		rec.status = "up";
		rec.persistent = opts.persistent ?? false;
		writeRecord(root, rec);
		return rec;
	} catch (err) {
		await destroyRecord(root, rec, 0).catch(() => {});
		throw err;
	}
}

async function startRegistry(rec: LabRecord, signal?: AbortSignal): Promise<void> {
	const reg = rec.registry;
	if (!reg) return;
	const { startLabRegistry } = await import("./registry.ts");
	mkdirSync(reg.dataDir, { recursive: true });
	const started = await startLabRegistry({ netns: reg.netns, dataDir: reg.dataDir, signal });
	const id = identify(started.pid);
	if (id) rec.processes.push(id);
}
