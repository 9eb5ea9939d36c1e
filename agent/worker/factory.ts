// The worker as the agent starts it: a Runtime on the node's data root and an OverlayDriver on
// its advertised address, so that agent.ts needs neither runtime/ nor overlay-net/ itself.
import { createHash } from "node:crypto";
import { OverlayDriver } from "../../overlay-net/index.ts";
import { Runtime } from "../../runtime/index.ts";
import type { WorkerLogger } from "./controller.ts";
import { Worker } from "./worker.ts";

export interface NodeWorkerOptions {
	dataRoot: string;
	nodeId: string;
	logger: WorkerLogger;
	/** The node's underlay address (what it advertises). */
	underlayIp: string;
	/** os/arch[/variant] the node pulls and runs (default: this machine's). */
	platform?: string;
	/** Registries reached over plain http (TSSWARM_INSECURE_REGISTRIES by default). */
	insecureRegistries?: string[];
	/** Names of this node's kernel objects (sandboxes, task namespaces): unique per node. */
	netnsPrefix?: string;
}

export async function startNodeWorker(
	o: NodeWorkerOptions,
): Promise<{ worker: Worker; close(o?: { stopContainers?: boolean }): Promise<void> }> {
	const insecure = o.insecureRegistries ?? (process.env.TSSWARM_INSECURE_REGISTRIES ?? "").split(",").filter(Boolean);
	const runtime = new Runtime({ root: o.dataRoot, insecureRegistries: insecure, prewarmShim: true });
	const prefix =
		o.netnsPrefix ??
		process.env.TSSWARM_NETNS_PREFIX ??
		`tsw${createHash("sha256").update(o.nodeId).digest("hex").slice(0, 6)}`;
	const driver = new OverlayDriver({ underlayIp: o.underlayIp, prefix });
	const worker = new Worker({
		dataRoot: o.dataRoot,
		nodeId: o.nodeId,
		runtime,
		logger: o.logger,
		...(o.platform ? { platform: o.platform } : {}),
		network: { driver, netnsPrefix: `${prefix}-t` },
	});
	await worker.start();
	return {
		worker,
		async close(c = {}) {
			await worker.stop(c);
			driver.close();
		},
	};
}
