// A simulated cluster of membership nodes on a virtual clock (used by tests and the benchmark).
import {
	lanConfig,
	Membership,
	type MembershipConfig,
	SimNetwork,
	VirtualClock,
} from "../../../agent/membership/index.ts";
import { Rng } from "../../consensus/sim/rng.ts";

export interface SimCluster {
	clock: VirtualClock;
	net: SimNetwork;
	nodes: Membership[];
	/** Advance virtual time by ms, in small steps. */
	run(ms: number): void;
	/** Virtual ms until every node in `who` sees exactly `expected` live members (or undefined). */
	runUntil(cond: () => boolean, maxMs: number, stepMs?: number): number | undefined;
	bytesSent(): number;
}

export const KEY = new TextEncoder().encode("sim-cluster-key-0123456789abcdef");

export async function simCluster(
	n: number,
	o: { seed?: number; config?: Partial<MembershipConfig>; loss?: number } = {},
): Promise<SimCluster> {
	const rng = new Rng(o.seed ?? 1);
	const clock = new VirtualClock();
	const net = new SimNetwork(clock, () => rng.next());
	net.lossRate = o.loss ?? 0;
	const nodes: Membership[] = [];
	for (let i = 0; i < n; i++) {
		const m = new Membership({
			id: `m${i}`,
			transport: net.transport(`10.0.${i >> 8}.${i & 255}:7946`),
			clusterKey: KEY,
			config: { ...lanConfig(), ...o.config },
			clock,
			random: () => rng.next(),
			meta: { role: i < 3 ? "manager" : "worker", platform: { os: "linux", architecture: i % 2 ? "arm64" : "amd64" } },
		});
		await m.start();
		nodes.push(m);
	}
	// Everyone joins through the first node, staggered a little.
	for (const [i, m] of nodes.entries()) if (i > 0) clock.setTimer(i % 50, () => m.join([nodes[0]!.all()[0]!.addr]));
	const run = (ms: number) => clock.advance(clock.now() + ms);
	return {
		clock,
		net,
		nodes,
		run,
		runUntil(cond, maxMs, stepMs = 50) {
			const start = clock.now();
			while (clock.now() - start <= maxMs) {
				if (cond()) return clock.now() - start;
				run(stepMs);
			}
			return undefined;
		},
		bytesSent: () => nodes.reduce((s, m) => s + m.bytesSent, 0),
	};
}

/** Every running node sees `count` live members. */
export const converged = (nodes: Membership[], count: number) => nodes.every((m) => m.live().length === count);
