// The rolling updater's decisions as a pure function of (service, its tasks, nodes, now): which
// slots to replace next, which old tasks to stop, which new ones failed, and the update's status.
// Everything it reads is in the store, so a new leader decides exactly where the old one stopped.
import { isTerminal, type Service, type Task, type UpdateConfig, type UpdateStatus } from "../../services/index.ts";
import { newTask, type PlanNode, type PlanOp, type Versioned } from "../orchestrator/index.ts";

export interface DecideInput {
	service: Versioned<Service>;
	tasks: Versioned<Task>[];
	nodes: PlanNode[];
	now: number;
	/** A task on a node down this long counts as gone (default 5 s, as the orchestrator's). */
	downGraceMs?: number;
	globalFits?: (service: Service, node: PlanNode) => boolean;
	/** When this leader asked an old task to stop (ms, by task id); lost on a leader change, which only waits again. */
	stopAsked?: Map<string, number>;
}

export interface SlotView {
	key: string;
	state: "pending" | "updating" | "done" | "failed";
}

export interface Decision {
	ops: PlanOp[];
	/** The service record to write (status, failures, automatic rollback), or none. */
	service?: Service;
	slots: SlotView[];
}

const ACTIVE = new Set(["updating", "rollback_started"]);
const live = (t: Task) => t.desiredState === "running" || t.desiredState === "ready";
const at = (iso: string) => Date.parse(iso) || 0;
const newestFirst = (a: Task, b: Task) => at(b.createdAt) - at(a.createdAt);
/** A stop asked of an old task is waited for this long past its grace period, then given up on. */
const STOP_MARGIN_MS = 20_000;

export const isUpdating = (svc: Service): boolean => ACTIVE.has(svc.updateStatus?.state ?? "");

/** Does the task have a health check that gates it (its own spec's; NONE disables)? */
const checked = (t: Task) => {
	const hc = t.spec.container.healthcheck;
	return !!hc && hc.test[0] !== "NONE";
};

/** Updated: running, and healthy when it has a health check. */
export const taskOk = (t: Task): boolean =>
	t.status.state === "running" && (t.status.health ? t.status.health === "healthy" : !checked(t));

/**
 * The orchestrator leaves a slot to the updater while an update runs and the slot still has a
 * live task of another version, or its newest task is of another version (stopped, not yet replaced).
 */
export function updaterOwns(svc: Service, history: Task[]): boolean {
	if (!isUpdating(svc) || svc.spec.mode.kind.endsWith("job")) return false;
	if (history.some((t) => live(t) && t.specVersion !== svc.specVersion)) return true;
	const newest = [...history].sort(newestFirst)[0];
	return newest !== undefined && newest.specVersion !== svc.specVersion;
}

/** The config this update runs with: a rollback uses the rollback config of the spec it leaves. */
export function activeConfig(svc: Service): UpdateConfig {
	if (svc.updateStatus?.state !== "rollback_started") return svc.spec.update;
	return svc.previousSpec?.rollback ?? svc.spec.rollback;
}

/**
 * Why a slot's attempt failed, or undefined (fine, or still on its way): it ended (counted only for
 * tasks this update made), turned unhealthy, or is not running (and healthy) timeoutMs after `since`.
 */
export function failureOf(t: Task, cfg: UpdateConfig, now: number, since: number, ours = true): string | undefined {
	const s = t.status;
	if (ours && (s.state === "failed" || s.state === "rejected")) return `task ${s.state}: ${s.err ?? s.message}`;
	if (ours && s.state === "complete") return `task exited (${s.exitCode ?? 0})`;
	if (s.state === "running" && s.health === "unhealthy") return "task is unhealthy";
	if (!taskOk(t) && now - since >= cfg.timeoutMs)
		return `task not running${checked(t) ? " and healthy" : ""} within ${Math.round(cfg.timeoutMs / 1000)} s (update timeout)`;
	return undefined;
}

/** Swapping spec and previous spec: the status a rollback starts with (automatic or asked). */
export function rolledBack(svc: Service, now: number, message: string): Service | undefined {
	if (!svc.previousSpec) return undefined;
	const version = svc.previousSpecVersion ?? svc.specVersion + 1;
	return {
		...svc,
		spec: svc.previousSpec,
		specVersion: version,
		previousSpec: svc.spec,
		previousSpecVersion: svc.specVersion,
		updateStatus: { state: "rollback_started", startedAt: new Date(now).toISOString(), message },
		updatedAt: new Date(now).toISOString(),
	};
}

interface Slot {
	key: string;
	where: { slot?: number; nodeId?: string };
	tasks: Task[];
}

function slotsOf(i: DecideInput): Slot[] {
	const svc = i.service.value;
	const tasks = i.tasks.map((x) => x.value);
	const mode = svc.spec.mode;
	if (mode.kind === "replicated") {
		const out: Slot[] = [];
		for (let s = 1; s <= mode.replicas; s++)
			out.push({ key: String(s), where: { slot: s }, tasks: tasks.filter((t) => t.slot === s) });
		return out;
	}
	return i.nodes
		.filter((n) => n.availability !== "drain" && !n.down && (i.globalFits?.(svc, n) ?? true))
		.map((n) => ({ key: n.id, where: { nodeId: n.id }, tasks: tasks.filter((t) => t.nodeId === n.id) }));
}

/** One pass of the updater over one service. */
export function decide(i: DecideInput): Decision {
	const svc = i.service.value;
	const st = svc.updateStatus;
	if (!st || !ACTIVE.has(st.state)) return { ops: [], slots: [] };
	const now = i.now;
	const rollingBack = st.state === "rollback_started";
	const finish = (state: UpdateStatus["state"], message: string): Service => ({
		...svc,
		updateStatus: {
			state,
			...(st.startedAt ? { startedAt: st.startedAt } : {}),
			...(state.endsWith("completed") ? { completedAt: new Date(now).toISOString() } : {}),
			message,
		},
		updatedAt: new Date(now).toISOString(),
	});
	// Jobs run to completion again under the new spec; there is nothing to roll through.
	if (svc.spec.mode.kind.endsWith("job"))
		return {
			ops: [],
			slots: [],
			service: finish(rollingBack ? "rollback_completed" : "completed", "update completed"),
		};

	const cfg = activeConfig(svc);
	const cur = svc.specVersion;
	const startedAt = at(st.startedAt ?? "");
	const versions = new Map(i.tasks.map((x) => [x.value.id, x.version]));
	const nodes = new Map(i.nodes.map((n) => [n.id, n]));
	const grace = i.downGraceMs ?? 5000;
	const gone = (t: Task) => {
		if (!t.nodeId) return false;
		const n = nodes.get(t.nodeId);
		return !n || n.availability === "drain" || (!!n.down && now - n.down.since >= grace);
	};
	const failed = new Set<string>(st.failedTasks ?? []);
	const fresh: Array<{ id: string; why: string }> = [];
	const ops: PlanOp[] = [];
	const stop = (t: Task) => {
		if (!live(t)) return;
		ops.push({ op: "update", id: t.id, version: versions.get(t.id)!, task: { ...t, desiredState: "shutdown" } });
		i.stopAsked?.set(t.id, now);
	};

	const slots = slotsOf(i);
	const views: SlotView[] = [];
	const pending: Array<{ slot: Slot; old: Task[] }> = [];
	let busy = 0;
	let lastOk = 0;

	for (const slot of slots) {
		const sorted = [...slot.tasks].sort(newestFirst);
		const old = sorted.filter((t) => t.specVersion !== cur);
		const oldLive = old.filter(live);
		const news = sorted.filter((t) => t.specVersion === cur);
		// The slot's current attempt at the new version: its live task, or its newest if newer than every old one.
		const newest = news[0];
		const attempt =
			news.find(live) ?? (newest && (!old[0] || at(newest.createdAt) > at(old[0].createdAt)) ? newest : undefined);
		const view = (state: SlotView["state"]) => views.push({ key: slot.key, state });

		if (news.some((t) => failed.has(t.id))) {
			// Counted already: under "continue" the slot goes on to the new version like any other.
			if (cfg.failureAction === "continue") for (const t of oldLive) stop(t);
			view("failed");
			continue;
		}
		const why = attempt
			? failureOf(attempt, cfg, now, Math.max(at(attempt.createdAt), startedAt), at(attempt.createdAt) >= startedAt)
			: undefined;
		if (attempt && why) {
			fresh.push({ id: attempt.id, why });
			stop(attempt);
			if (cfg.failureAction === "continue") for (const t of oldLive) stop(t);
			view("failed");
			continue;
		}
		if (attempt && live(attempt) && taskOk(attempt)) {
			for (const t of oldLive) stop(t); // start-first: the old one goes once the new one serves
			lastOk = Math.max(lastOk, at(attempt.status.timestamp));
			view("done");
			continue;
		}
		if (attempt && (live(attempt) || oldLive.length === 0)) {
			// On its way (or ended, and the orchestrator restarts it per the restart policy); the deadline bounds it.
			busy++;
			view("updating");
			continue;
		}
		if (oldLive.length === 0) {
			if (old.length === 0) {
				view("done"); // an empty slot is the orchestrator's (it creates it at the current version)
				continue;
			}
			// Stopped (by us, stop-first; or it had ended): replace it once the old container is gone.
			const waiting = old.filter((t) => {
				if (isTerminal(t.status.state) || gone(t)) return false;
				const asked = i.stopAsked?.get(t.id);
				if (asked === undefined) {
					i.stopAsked?.set(t.id, now);
					return true;
				}
				return now - asked < (t.spec.container.stopGracePeriodMs ?? 10_000) + STOP_MARGIN_MS;
			});
			if (waiting.length === 0) ops.push({ op: "create", task: newTask(svc, now, slot.where) });
			busy++;
			view("updating");
			continue;
		}
		if (oldLive.every(gone)) {
			// Its node is lost: nothing serves this slot, so replace it now, outside the batch.
			for (const t of oldLive) stop(t);
			ops.push({ op: "create", task: newTask(svc, now, slot.where) });
			busy++;
			view("updating");
			continue;
		}
		pending.push({ slot, old: oldLive });
		view("pending");
	}

	// Failures beyond the ratio: the failure action, before anything else starts.
	const failures = failed.size + fresh.length;
	const record: string[] = [...failed, ...fresh.map((f) => f.id)];
	if (fresh.length > 0 && slots.length > 0 && failures / slots.length > cfg.maxFailureRatio) {
		const f = fresh[0]!;
		const what = `failure or early termination of task ${f.id}: ${f.why}`;
		const action = rollingBack && cfg.failureAction === "rollback" ? "pause" : cfg.failureAction;
		if (action === "rollback") {
			const back = rolledBack(svc, now, `update rolled back due to ${what}`);
			if (back) return { ops, service: back, slots: views };
		}
		if (action !== "continue") {
			const state = rollingBack ? "rollback_paused" : "paused";
			const s = finish(state, `${rollingBack ? "rollback" : "update"} paused due to ${what}`);
			s.updateStatus!.failedTasks = record;
			return { ops, service: s, slots: views };
		}
	}

	const room = (cfg.parallelism === 0 ? Number.POSITIVE_INFINITY : cfg.parallelism) - busy;
	const canStart = cfg.delayMs === 0 || now - lastOk >= cfg.delayMs;
	let started = 0;
	for (const { slot, old } of pending) {
		if (started >= room || !canStart) break;
		started++;
		const v = views.find((x) => x.key === slot.key)!;
		v.state = "updating";
		if (cfg.order === "start-first") {
			ops.push({ op: "create", task: newTask(svc, now, slot.where) });
			continue;
		}
		for (const t of old) stop(t);
		// An old task that already ended needs no wait: the new one goes in at once.
		if (old.every((t) => isTerminal(t.status.state) || gone(t)))
			ops.push({ op: "create", task: newTask(svc, now, slot.where) });
	}

	let service: Service | undefined;
	if (fresh.length > 0) {
		service = { ...svc, updateStatus: { ...st, failedTasks: record }, updatedAt: new Date(now).toISOString() };
	}
	const settled = views.every((v) => v.state === "done" || v.state === "failed");
	// Completed once every slot is on the new version and the last one has been watched for monitorMs.
	if (settled && ops.length === 0 && now - lastOk >= cfg.monitorMs) {
		service = finish(
			rollingBack ? "rollback_completed" : "completed",
			`${rollingBack ? "rollback" : "update"} completed`,
		);
	}
	return { ops, ...(service ? { service } : {}), slots: views };
}
