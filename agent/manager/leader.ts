// The leader's loops (allocator, scheduler, orchestrator, dispatcher, ...): started when this
// manager becomes Raft leader, aborted when it stops being leader. Nothing else on a manager
// writes desired state, so two leaders' loops can never fight over it for long.
import { setTimeout as sleep } from "node:timers/promises";
import type { StoreLogger } from "../store/index.ts";

export interface LeaderComponent {
	readonly name: string;
	/** Runs until the signal aborts (leadership lost, or the manager stops). */
	run(signal: AbortSignal): Promise<void>;
}

export interface LeadershipSource {
	isLeader(): boolean;
	on(event: "leader", listener: () => void): unknown;
	off(event: "leader", listener: () => void): unknown;
	/** Resolves once everything committed before the call is applied here (on the leader). */
	barrier(o: { signal?: AbortSignal }): Promise<void>;
}

export class LeaderLoops {
	private readonly source: LeadershipSource;
	private readonly components: LeaderComponent[];
	private readonly log: StoreLogger;
	private current: { ac: AbortController; done: Promise<void> } | undefined;
	private readonly onLeader = () => this.check();
	private timer: NodeJS.Timeout | undefined;

	constructor(source: LeadershipSource, components: LeaderComponent[], log: StoreLogger) {
		this.source = source;
		this.components = components;
		this.log = log;
	}

	start(): void {
		this.source.on("leader", this.onLeader);
		// Leadership is also lost silently (check-quorum steps down without a new leader event).
		this.timer = setInterval(() => this.check(), 250);
		this.timer.unref();
		this.check();
	}

	private check(): void {
		const leader = this.source.isLeader();
		if (leader && !this.current) {
			const ac = new AbortController();
			const done = (async () => {
				// As hashicorp/raft users do (Consul's leaderLoop): a barrier first. A new leader's state
				// machine may not have applied what earlier terms committed; loops deciding on it would
				// act on an old state (promote a node a later record excludes, reschedule done work).
				try {
					await this.source.barrier({ signal: ac.signal });
				} catch (err) {
					if (ac.signal.aborted) return;
					this.log.warn({ err: (err as Error).message }, "leader: barrier failed; the loops start at the next check");
					if (this.current?.ac === ac) this.current = undefined;
					return;
				}
				if (ac.signal.aborted) return;
				this.log.info({ loops: this.components.map((c) => c.name) }, "leader: starting the manager loops");
				await Promise.all(this.components.map((c) => this.supervise(c, ac.signal)));
			})();
			this.current = { ac, done };
		} else if (!leader && this.current) {
			this.log.info({}, "no longer leader: stopping the manager loops");
			this.current.ac.abort(new Error("leadership lost"));
			this.current = undefined;
		}
	}

	/** A loop that fails is logged and restarted (after a pause) for as long as we lead. */
	private async supervise(c: LeaderComponent, signal: AbortSignal): Promise<void> {
		while (!signal.aborted) {
			try {
				await c.run(signal);
			} catch (err) {
				if (signal.aborted) break;
				this.log.error({ loop: c.name, err: (err as Error).message }, "manager loop failed; restarting it");
			}
			await sleep(500, undefined, { signal }).catch(() => {});
		}
	}

	async stop(): Promise<void> {
		this.source.off("leader", this.onLeader);
		clearInterval(this.timer);
		const cur = this.current;
		this.current = undefined;
		cur?.ac.abort(new Error("manager stopping"));
		await cur?.done;
	}
}

/**
 * Run `pass` whenever `subscribe` reports a change (coalesced: at most one pass at a time, and
 * one more after it if changes came in meanwhile), and at least every `everyMs` for timers.
 */
export async function reactiveLoop(
	signal: AbortSignal,
	subscribe: (wake: () => void) => () => void,
	pass: () => Promise<void>,
	everyMs = 1000,
): Promise<void> {
	let dirty = true;
	let wakeUp: (() => void) | undefined;
	const wake = () => {
		dirty = true;
		wakeUp?.();
	};
	const unsubscribe = subscribe(wake);
	const onAbort = () => wakeUp?.();
	signal.addEventListener("abort", onAbort);
	try {
		while (!signal.aborted) {
			if (dirty) {
				dirty = false;
				await pass();
				continue;
			}
			await new Promise<void>((resolve) => {
				const t = setTimeout(() => {
					dirty = true;
					resolve();
				}, everyMs);
				wakeUp = () => {
					clearTimeout(t);
					resolve();
				};
			});
			wakeUp = undefined;
		}
	} finally {
		unsubscribe();
		signal.removeEventListener("abort", onAbort);
	}
}
