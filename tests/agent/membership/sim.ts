// A simulated cluster of membership nodes on a virtual clock (used by tests and the benchmark):
// loss, partitions and slow nodes on the network; kills and restarts; convergence, detection
// times, false failures and bytes per node measured in virtual time. Deterministic per seed.
import { createHmac, timingSafeEqual } from "node:crypto";
import {
	lanConfig,
	Membership,
	type MembershipConfig,
	SimNetwork,
	type StatementCrypto,
	VirtualClock,
} from "../../../agent/membership/index.ts";
import { Rng } from "../../consensus/sim/rng.ts";

export interface SimCluster {
	clock: VirtualClock;
	net: SimNetwork;
	nodes: Membership[];
	/** Membership address of node i. */
	addr(i: number): string;
	/** Advance virtual time by ms. */
	run(ms: number): void;
	/** Virtual ms until cond holds (checked every stepMs), or undefined after maxMs. */
	runUntil(cond: () => boolean, maxMs: number, stepMs?: number): number | undefined;
	/** Crash node i (no leave): it stops answering. */
	kill(i: number): Promise<void>;
	/**
	 * Start node i again with the same id (a fresh process: incarnation 1), joining through seed;
	 * at `addr` when given (a node back on a new IP), else at its address.
	 */
	restart(i: number, seed?: number, addr?: string): Promise<void>;
	/** Nodes currently running. */
	running(): Membership[];
	bytesSent(): number;
}

export const KEY = new TextEncoder().encode("sim-cluster-key-0123456789abcdef");

/**
 * Statement signatures for simulated members (ids m0, m1, ... are not peer ids, and a thousand
 * members verifying real Ed25519 would dominate the run): a 64-byte HMAC of id and statement, the
 * size of an Ed25519 signature. Members in a sim never forge; tests of forgery use real keys.
 */
const SIM_SIGNING_SECRET = new TextEncoder().encode("sim-statement-secret");
const simSig = (id: string, data: Uint8Array) =>
	createHmac("sha512", SIM_SIGNING_SECRET).update(id).update("\0").update(data).digest();
export function simStatements(id: string): StatementCrypto {
	return {
		sign: (data) => simSig(id, data),
		verify: (member, data, sig) => sig.length === 64 && timingSafeEqual(simSig(member, data), sig),
	};
}

export interface SimOptions {
	seed?: number;
	config?: Partial<MembershipConfig>;
	loss?: number;
}

export async function simCluster(n: number, o: SimOptions = {}): Promise<SimCluster> {
	const rng = new Rng(o.seed ?? 1);
	const clock = new VirtualClock();
	const net = new SimNetwork(clock, () => rng.next());
	net.lossRate = o.loss ?? 0;
	const moved = new Map<number, string>();
	const addr = (i: number) => moved.get(i) ?? `10.0.${i >> 8}.${i & 255}:7946`;
	const down = new Set<number>();
	// Bytes of stopped incarnations of a node still count.
	let retiredBytes = 0;
	const make = (i: number) =>
		new Membership({
			id: `m${i}`,
			transport: net.transport(addr(i)),
			clusterKey: KEY,
			config: { ...lanConfig(), ...o.config },
			clock,
			wallClock: () => clock.now(),
			statements: simStatements(`m${i}`),
			random: () => rng.next(),
			meta: { role: i < 3 ? "manager" : "worker", platform: { os: "linux", architecture: i % 2 ? "arm64" : "amd64" } },
		});
	const nodes: Membership[] = [];
	for (let i = 0; i < n; i++) {
		const m = make(i);
		await m.start();
		nodes.push(m);
	}
	// Everyone joins through the first node, staggered a little.
	for (const [i, m] of nodes.entries()) if (i > 0) clock.setTimer(i % 50, () => m.join([addr(0)]));
	const run = (ms: number) => clock.advance(clock.now() + ms);
	return {
		clock,
		net,
		nodes,
		addr,
		run,
		runUntil(cond, maxMs, stepMs = 50) {
			const start = clock.now();
			while (clock.now() - start <= maxMs) {
				if (cond()) return clock.now() - start;
				run(stepMs);
			}
			return undefined;
		},
		async kill(i) {
			down.add(i);
			await nodes[i]!.stop();
		},
		async restart(i, seed = i === 0 ? 1 : 0, at) {
			retiredBytes += nodes[i]!.bytesSent;
			if (at !== undefined) moved.set(i, at);
			const m = make(i);
			await m.start();
			nodes[i] = m;
			down.delete(i);
			m.join([addr(seed)]);
		},
		running: () => nodes.filter((_, i) => !down.has(i)),
		bytesSent: () => retiredBytes + nodes.reduce((s, m) => s + m.bytesSent, 0),
	};
}

/** Every node given sees `count` live members. */
export const converged = (nodes: Membership[], count: number) => nodes.every((m) => m.live().length === count);

const pct = (xs: number[], p: number) =>
	xs.length === 0
		? Number.NaN
		: [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

/**
 * Kill a node, measure until every survivor marks it failed, restart it and wait until all see it
 * alive again; `kills` times, over nodes 1..n-1 in turn. Returns detection times (virtual ms).
 */
export async function detectionTimes(c: SimCluster, kills: number): Promise<number[]> {
	const n = c.nodes.length;
	const out: number[] = [];
	for (let k = 0; k < kills; k++) {
		const v = 1 + (k % (n - 1));
		const id = `m${v}`;
		await c.kill(v);
		const det = c.runUntil(() => c.running().every((m) => m.get(id)?.state === "dead"), 60_000, 10);
		if (det === undefined) throw new Error(`sim: ${id} was not marked failed by everyone within 60 s`);
		out.push(det);
		await c.restart(v);
		if (c.runUntil(() => converged(c.nodes, n), 60_000) === undefined)
			throw new Error(`sim: ${id} did not come back within 60 s`);
		// Let old news age out of the piggyback queues before the next kill.
		c.run(2000);
	}
	return out;
}

export interface ScenarioResult {
	members: number;
	seed: number;
	loss: number;
	slowNodes: number;
	convergeMs: number;
	partitionSplitMs: number;
	partitionMergeMs: number;
	partitionSides: [number, number];
	bytesPerSecPerNode: number;
	falseFailures: number;
}

/**
 * The simulation: n members join (convergence time), then a soak with loss and slow
 * nodes (bytes/s per node and false failures), then a partition (time until each side has
 * failed the other) and its heal (time until all are merged again by push-pull).
 */
export async function scenario(
	n: number,
	o: SimOptions & {
		slowNodes?: number;
		slowMs?: number;
		soakMs?: number;
		partition?: boolean;
		/** Share of the members cut off from the rest (default one half). */
		partitionFraction?: number;
	} = {},
): Promise<ScenarioResult> {
	const seed = o.seed ?? 1;
	const c = await simCluster(n, o);
	const convergeMs = c.runUntil(() => converged(c.nodes, n), 300_000, 100);
	if (convergeMs === undefined) throw new Error(`sim: ${n} members did not converge (seed ${seed})`);
	let falseFailures = 0;
	const onFail = () => falseFailures++;
	for (const m of c.nodes) m.on("fail", onFail);
	const slow = Array.from({ length: o.slowNodes ?? 0 }, (_, i) => c.addr(n - 1 - i));
	for (const a of slow) c.net.slow.set(a, o.slowMs ?? 150);
	const soak = o.soakMs ?? 30_000;
	const b0 = c.bytesSent();
	c.run(soak);
	const bytesPerSecPerNode = (c.bytesSent() - b0) / n / (soak / 1000);
	for (const a of slow) c.net.slow.delete(a);
	for (const m of c.nodes) m.off("fail", onFail);
	let partitionSplitMs = -1;
	let partitionMergeMs = -1;
	let partitionSides: [number, number] = [0, 0];
	if (o.partition !== false) {
		const half = Math.max(1, Math.floor(n * (o.partitionFraction ?? 0.5)));
		const left = Array.from({ length: half }, (_, i) => c.addr(i));
		const right = Array.from({ length: n - half }, (_, i) => c.addr(half + i));
		c.net.partition(left, right);
		partitionSides = [half, n - half];
		const sideSees = () => c.nodes.every((m, i) => m.live().length === (i < half ? half : n - half));
		partitionSplitMs = c.runUntil(sideSees, 300_000, 100) ?? -1;
		c.net.heal();
		partitionMergeMs = c.runUntil(() => converged(c.nodes, n), 600_000, 100) ?? -1;
	}
	for (const m of c.nodes) await m.stop();
	return {
		members: n,
		seed,
		loss: o.loss ?? 0,
		slowNodes: slow.length,
		convergeMs,
		partitionSplitMs,
		partitionMergeMs,
		partitionSides,
		bytesPerSecPerNode: Math.round(bytesPerSecPerNode),
		falseFailures,
	};
}

export { pct };
