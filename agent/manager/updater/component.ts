// The updater loop (leader only): on every change of services, tasks or nodes, and every half
// second for deadlines, delays and monitor windows, it asks decide() per updating service and
// commits the result with the service record's version, so a concurrent `service update` wins.
import type { Service } from "../../services/index.ts";
import type { ClusterStore, Op, StoreLogger } from "../../store/index.ts";
import { type LeaderComponent, reactiveLoop } from "../leader.ts";
import { onTables, type PlanNode, planNodes, toStoreOps } from "../orchestrator/index.ts";
import { decide, isUpdating } from "./decide.ts";

export interface UpdaterOptions {
	downGraceMs?: number;
	globalFits?: (service: Service, node: PlanNode) => boolean;
	/** How often deadlines and windows are looked at without a change (default 500 ms). */
	everyMs?: number;
}

export class Updater implements LeaderComponent {
	readonly name = "updater";
	private readonly store: ClusterStore;
	private readonly log: StoreLogger;
	private readonly o: UpdaterOptions;
	private readonly stopAsked = new Map<string, number>();

	constructor(store: ClusterStore, log: StoreLogger, o: UpdaterOptions = {}) {
		this.store = store;
		this.log = log;
		this.o = o;
	}

	run(signal: AbortSignal): Promise<void> {
		this.stopAsked.clear();
		return reactiveLoop(
			signal,
			onTables(this.store, ["services", "tasks", "nodes"]),
			async () => {
				await this.pass();
			},
			this.o.everyMs ?? 500,
		);
	}

	/** One round over every updating service; returns how many of them had writes. */
	async pass(): Promise<number> {
		const services = this.store.list("services").filter((s) => isUpdating(s.value));
		if (services.length === 0) {
			this.stopAsked.clear();
			return 0;
		}
		const nodes = planNodes(this.store);
		let wrote = 0;
		for (const s of services) {
			const d = decide({
				service: s,
				tasks: this.store.find("tasks", { by: "serviceId", value: s.id }),
				nodes,
				now: Date.now(),
				stopAsked: this.stopAsked,
				...(this.o.downGraceMs !== undefined ? { downGraceMs: this.o.downGraceMs } : {}),
				...(this.o.globalFits ? { globalFits: this.o.globalFits } : {}),
			});
			const ops: Op[] = toStoreOps(d.ops);
			if (d.service) ops.unshift({ op: "update", table: "services", id: s.id, version: s.version, value: d.service });
			if (ops.length === 0) continue;
			try {
				await this.store.commit(ops);
				wrote++;
				if (d.service?.updateStatus?.state !== s.value.updateStatus?.state)
					this.log.info(
						{
							service: s.value.spec.name,
							state: d.service?.updateStatus?.state,
							message: d.service?.updateStatus?.message,
						},
						"service update state",
					);
			} catch (err) {
				// Something changed meanwhile (a task report, a new spec): the next pass decides again.
				this.log.debug({ service: s.value.spec.name, err: (err as Error).message }, "update step skipped");
			}
		}
		return wrote;
	}
}
