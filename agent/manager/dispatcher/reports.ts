// Workers' status reports, checked and written in batches: one transaction per flush (every
// flushMs, or at once when maxBatch reports wait), update ops at the versions read, re-read and
// retried on a version conflict. Only `status` changes; desired state is the managers' to write.
import { isDeepStrictEqual } from "node:util";
import { ReportRefusedError, type StatusReport } from "../../dispatch/index.ts";
import { stateRank, type Task, type TaskStatus } from "../../services/index.ts";
import type { DispatchLogger } from "./endpoint.ts";
import type { DispatchStore } from "./store.ts";

const OPS_PER_TX = 1000;
const RETRIES = 5;

export interface ReportWriterOptions {
	store: DispatchStore;
	logger: DispatchLogger;
	flushMs: number;
	maxBatch: number;
	signal: AbortSignal;
	refused(nodeId: string, err: ReportRefusedError): void;
	written(count: number): void;
}

export class ReportWriter {
	private readonly o: ReportWriterOptions;
	private pending = new Map<string, { nodeId: string; status: TaskStatus }>();
	private timer: NodeJS.Timeout | undefined;
	private flushing: Promise<void> | undefined;

	constructor(o: ReportWriterOptions) {
		this.o = o;
		o.signal.addEventListener("abort", () => clearTimeout(this.timer), { once: true });
	}

	/** Why `status` may not be written for the task now, or undefined when it may. */
	private check(
		nodeId: string,
		taskId: string,
		status: TaskStatus,
		task: Task | undefined,
		queued = true,
	): string | undefined {
		if (!task) return "no such task";
		if (task.nodeId !== nodeId) return "the task is not assigned to this node";
		const cur = (queued ? this.pending.get(taskId)?.status : undefined) ?? task.status;
		if (cur && stateRank(status.state) < stateRank(cur.state))
			return `state ${status.state} is behind ${cur.state}: a task only moves forward`;
		return undefined;
	}

	/** Check the reports of one frame; those that hold are queued for the next write. */
	add(nodeId: string, reports: StatusReport[]): void {
		for (const { taskId, status } of reports) {
			const task = this.o.store.task(taskId)?.value;
			const why = this.check(nodeId, taskId, status, task);
			if (why) {
				this.o.refused(nodeId, new ReportRefusedError(nodeId, taskId, why));
				continue;
			}
			const cur = this.pending.get(taskId)?.status ?? task!.status;
			if (isDeepStrictEqual(cur, status)) continue; // a resend after reconnect: nothing new
			this.pending.set(taskId, { nodeId, status });
		}
		if (this.pending.size >= this.o.maxBatch) this.flushSoon(0);
		else if (this.pending.size > 0) this.flushSoon(this.o.flushMs);
	}

	private flushSoon(ms: number): void {
		if (this.o.signal.aborted) return;
		if (this.timer && ms > 0) return;
		clearTimeout(this.timer);
		this.timer = setTimeout(() => {
			this.timer = undefined;
			void this.flush();
		}, ms);
	}

	/** Write what is queued (one flush at a time; reports that arrive meanwhile wait for the next). */
	async flush(): Promise<void> {
		while (this.flushing) await this.flushing;
		if (this.pending.size === 0 || this.o.signal.aborted) return;
		const batch = this.pending;
		this.pending = new Map();
		this.flushing = this.write(batch).finally(() => {
			this.flushing = undefined;
			if (this.pending.size > 0) this.flushSoon(this.pending.size >= this.o.maxBatch ? 0 : this.o.flushMs);
		});
		await this.flushing;
	}

	private async write(batch: Map<string, { nodeId: string; status: TaskStatus }>): Promise<void> {
		const entries = [...batch];
		for (let i = 0; i < entries.length; i += OPS_PER_TX) {
			const part = entries.slice(i, i + OPS_PER_TX);
			for (let attempt = 0; ; attempt++) {
				const updates: Array<{ id: string; version: number; value: Task }> = [];
				for (const [id, { nodeId, status }] of part) {
					const rec = this.o.store.task(id);
					// Checked again: the task may have moved or been removed since the report came.
					const why = this.check(nodeId, id, status, rec?.value, false);
					if (why) this.o.refused(nodeId, new ReportRefusedError(nodeId, id, why));
					else if (!isDeepStrictEqual(rec!.value.status, status))
						updates.push({ id, version: rec!.version, value: { ...rec!.value, status } });
				}
				if (updates.length === 0) break;
				try {
					await this.o.store.updateTasks(updates, this.o.signal);
					this.o.written(updates.length);
					break;
				} catch (err) {
					const code = (err as { code?: string }).code;
					if (code === "ERR_VERSION_CONFLICT" && attempt < RETRIES && !this.o.signal.aborted) continue;
					if (!this.o.signal.aborted)
						this.o.logger.warn(
							{ reports: updates.length, code, err: (err as Error).message },
							"dispatcher: status reports not written",
						);
					break;
				}
			}
		}
	}
}
