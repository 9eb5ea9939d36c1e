// Runs a task's applicable filters over nodes, stopping at the first refusal and counting it per
// filter, so a task no node fits gets Swarm's reason: "no suitable node (2 nodes not available for
// new tasks; 1 node lacks platform linux/arm64)", the most frequent refusal first.
import { defaultFilters, type Filter } from "./filters.ts";
import type { NodeInfo } from "./node-info.ts";
import type { SchedTask } from "./types.ts";

export class Pipeline {
	readonly #filters: Filter[];
	/** Indexes (into #filters) of the filters that apply to the current task. */
	#enabled: number[] = [];
	readonly #failures: number[];

	constructor(filters: Filter[] = defaultFilters()) {
		this.#filters = filters;
		this.#failures = filters.map(() => 0);
	}

	/** Prepares every filter for this task (and its equals) and clears the refusal counts. */
	setTask(task: SchedTask): void {
		this.#enabled = [];
		this.#filters.forEach((f, i) => {
			if (f.setTask(task)) this.#enabled.push(i);
		});
		this.resetCounts();
	}

	resetCounts(): void {
		this.#failures.fill(0);
	}

	/** True when the node passes every applicable filter; else counts the first that refused it. */
	process(node: NodeInfo): boolean {
		for (const i of this.#enabled) {
			if (!(this.#filters[i] as Filter).check(node)) {
				this.#failures[i] = (this.#failures[i] ?? 0) + 1;
				return false;
			}
		}
		return true;
	}

	/** The refusals counted since setTask()/resetCounts(), most nodes first ("a; b"). */
	explain(): string {
		return this.#filters
			.map((f, i) => ({ f, n: this.#failures[i] ?? 0 }))
			.filter((e) => e.n > 0)
			.sort((a, b) => b.n - a.n)
			.map((e) => e.f.explain(e.n))
			.join("; ");
	}

	/** The pending reason `service ps` shows. */
	reason(): string {
		const why = this.explain();
		return why ? `no suitable node (${why})` : "no suitable node";
	}
}
