// `tsswarm events`: what happens to the cluster state as docker's events name it (service create,
// task update, node down...), from the store's changes on this manager. A bounded ring keeps the
// recent past for --since; then events stream as they are applied here.
import { EventEmitter } from "node:events";
import type { ChangeEvent, ClusterStore } from "../store/index.ts";
import { InvalidServiceRequestError } from "./errors.ts";

export interface ClusterEvent {
	/** When this manager applied it (ISO). */
	time: string;
	/** The Raft index of the change: the same event has the same index on every manager. */
	index: number;
	type: "service" | "task" | "node" | "network" | "secret" | "config" | "cluster";
	action: "create" | "update" | "remove";
	id: string;
	attributes: Record<string, string>;
}

const TYPE: Record<string, ClusterEvent["type"]> = {
	services: "service",
	tasks: "task",
	nodes: "node",
	networks: "network",
	secrets: "secret",
	configs: "config",
	cluster: "cluster",
};

function toEvent(ev: ChangeEvent, time: string): ClusterEvent {
	const attributes: Record<string, string> = {};
	if (ev.table === "services") attributes.name = ev.record.value.spec.name;
	else if (ev.table === "networks" || ev.table === "secrets" || ev.table === "configs")
		attributes.name = ev.record.value.name;
	else if (ev.table === "tasks") {
		const t = ev.record.value;
		attributes.service = t.serviceName;
		if (t.nodeId) attributes.node = t.nodeId;
		attributes.state = t.status.state;
		attributes["desired-state"] = t.desiredState;
		if (ev.previous && ev.previous.value.status.state !== t.status.state)
			attributes["state.old"] = ev.previous.value.status.state;
	} else if (ev.table === "nodes") {
		const n = ev.record.value;
		attributes.name = n.hostname;
		if (n.status) attributes.state = n.status.state;
		if (ev.previous?.value.status && ev.previous.value.status.state !== n.status?.state)
			attributes["state.old"] = ev.previous.value.status.state;
		attributes.availability = n.availability;
		// Autopilot's promotions, demotions and removals (and `node update --role`) say why.
		attributes.role = n.role;
		if (ev.previous && ev.previous.value.role !== n.role) attributes["role.old"] = ev.previous.value.role;
		if (n.roleReason && (n.roleReason !== ev.previous?.value.roleReason || attributes["role.old"]))
			attributes.reason = n.roleReason;
	}
	return {
		time,
		index: ev.index,
		type: TYPE[ev.table]!,
		action: ev.action === "delete" ? "remove" : ev.action,
		id: ev.id,
		attributes,
	};
}

export interface EventsQuery {
	/** Events applied at or after this time (ms epoch); default now. */
	since?: number;
	/** Stop at this time (ms epoch): replay only, no waiting. */
	until?: number;
	/** docker's filters: type, event (action), service, node, id, name... (key=value). */
	filters: Array<[string, string]>;
}

const FILTER_KEYS = new Set(["type", "event", "service", "node", "id", "name"]);

/** "10m", "90s", "2h" (ago) or an ISO / RFC 3339 time or unix seconds. */
export function parseTime(v: string, what: string, now = Date.now()): number {
	const rel = /^(\d+)(s|m|h)$/.exec(v);
	if (rel) return now - Number(rel[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[rel[2] as "s" | "m" | "h"];
	if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
	const t = Date.parse(v);
	if (Number.isNaN(t))
		throw new InvalidServiceRequestError(`invalid ${what} "${v}": use 10m, 1h, an RFC 3339 time or unix seconds`);
	return t;
}

export function parseEventsQuery(raw: Record<string, unknown>): EventsQuery {
	const filters: Array<[string, string]> = [];
	for (const f of Array.isArray(raw.filters) ? raw.filters : []) {
		const [k, ...rest] = String(f).split("=");
		if (!k || !FILTER_KEYS.has(k) || rest.length === 0)
			throw new InvalidServiceRequestError(
				`invalid filter "${String(f)}": use ${[...FILTER_KEYS].join(", ")}=VALUE`,
				"ERR_USAGE",
			);
		filters.push([k, rest.join("=")]);
	}
	return {
		...(typeof raw.since === "string" && raw.since ? { since: parseTime(raw.since, "--since") } : {}),
		...(typeof raw.until === "string" && raw.until ? { until: parseTime(raw.until, "--until") } : {}),
		filters,
	};
}

function matches(e: ClusterEvent, filters: Array<[string, string]>): boolean {
	// As docker: filters of one key are ORed, different keys ANDed.
	const by = new Map<string, string[]>();
	for (const [k, v] of filters) by.set(k, [...(by.get(k) ?? []), v]);
	for (const [k, vs] of by) {
		const ok = vs.some((v) => {
			if (k === "type") return e.type === v;
			if (k === "event") return e.action === v;
			if (k === "id") return e.id.startsWith(v);
			if (k === "name") return e.attributes.name === v;
			if (k === "service")
				return e.attributes.service === v || (e.type === "service" && (e.attributes.name === v || e.id === v));
			if (k === "node")
				return e.attributes.node === v || (e.type === "node" && (e.attributes.name === v || e.id === v));
			return false;
		});
		if (!ok) return false;
	}
	return true;
}

export class EventLog {
	private readonly ring: ClusterEvent[] = [];
	private readonly max: number;
	private readonly emitter = new EventEmitter<{ event: [ClusterEvent] }>();
	private readonly off: () => void;

	constructor(store: ClusterStore, max = 10_000) {
		this.max = max;
		const on = (ev: ChangeEvent) => {
			const e = toEvent(ev, new Date().toISOString());
			this.ring.push(e);
			if (this.ring.length > this.max) this.ring.splice(0, this.ring.length - this.max);
			this.emitter.emit("event", e);
		};
		store.on("change", on);
		this.emitter.setMaxListeners(0);
		this.off = () => store.off("change", on);
	}

	close(): void {
		this.off();
	}

	/** The ring from `since`, then live events until `until` or the signal aborts. */
	async *stream(q: EventsQuery, signal: AbortSignal): AsyncGenerator<ClusterEvent> {
		const queue: ClusterEvent[] = [];
		let wake: (() => void) | undefined;
		const live = (e: ClusterEvent) => {
			if (matches(e, q.filters)) queue.push(e);
			wake?.();
		};
		const onAbort = () => wake?.();
		this.emitter.on("event", live);
		signal.addEventListener("abort", onAbort);
		try {
			if (q.since !== undefined) {
				for (const e of this.ring) {
					const t = Date.parse(e.time);
					if (t >= q.since && (q.until === undefined || t <= q.until) && matches(e, q.filters)) yield e;
				}
				queue.length = 0;
			}
			if (q.until !== undefined && q.until <= Date.now()) return;
			while (!signal.aborted) {
				while (queue.length) {
					const e = queue.shift()!;
					if (q.until !== undefined && Date.parse(e.time) > q.until) return;
					yield e;
				}
				const ms = q.until !== undefined ? Math.max(0, q.until - Date.now()) : 2 ** 31 - 1;
				await new Promise<void>((r) => {
					const t = setTimeout(r, Math.min(ms, 2 ** 31 - 1));
					wake = () => {
						clearTimeout(t);
						r();
					};
				});
				wake = undefined;
				if (q.until !== undefined && Date.now() >= q.until && queue.length === 0) return;
			}
		} finally {
			this.emitter.off("event", live);
			signal.removeEventListener("abort", onAbort);
		}
	}
}
