// Services as the manager keeps them: a spec is validated whole (fields, networks that exist,
// constraint syntax, ports free) before anything is stored; the leader writes the record and the
// loops (allocator, scheduler, orchestrator) do the rest.
import { randomBytes } from "node:crypto";
import { type Service, type ServiceSpec, type Task, validateServiceSpec } from "../services/index.ts";
import { type ClusterStore, NameInUseError, NotFoundError, type StoredRecord } from "../store/index.ts";
import { checkPorts } from "./allocator/index.ts";
import { InvalidServiceRequestError } from "./errors.ts";
import { newTaskId } from "./orchestrator/index.ts";
import { validatePlacement } from "./scheduler/index.ts";
import { resolveFileRefs } from "./secrets.ts";

/** A service by id, name or unique id prefix. */
export function findService(store: ClusterStore, ref: string): StoredRecord<Service> {
	const exact = store.get("services", ref) ?? store.byName("services", ref);
	if (exact) return exact;
	const matches = ref.length >= 3 ? store.list("services").filter((s) => s.id.startsWith(ref)) : [];
	if (matches.length === 1) return matches[0]!;
	if (matches.length > 1) throw new InvalidServiceRequestError(`service id prefix ${ref} is ambiguous`);
	throw new NotFoundError("service", ref);
}

/** A Swarm-like random name for a service created without --name. */
const ADJ = ["brave", "calm", "eager", "fond", "keen", "lucid", "proud", "quiet", "sharp", "witty"];
const NOUN = ["ant", "bee", "cat", "doe", "elk", "fox", "gnu", "hen", "owl", "yak"];
const randomName = () =>
	`${ADJ[randomBytes(1)[0]! % ADJ.length]}_${NOUN[randomBytes(1)[0]! % NOUN.length]}${randomBytes(1)[0]! % 100}`;

/** Everything that can be refused without writing: the spec, its networks, constraints, ports. */
export function checkServiceSpec(store: ClusterStore, raw: unknown, self?: string): ServiceSpec {
	const r = raw && typeof raw === "object" && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
	const spec = resolveFileRefs(store, validateServiceSpec(r.name === undefined ? { ...r, name: randomName() } : raw));
	validatePlacement({ placement: spec.task.placement });
	for (const n of spec.task.networks) {
		const net =
			store.get("networks", n.target) ??
			store.byName("networks", n.target) ??
			store.list("networks").find((x) => x.id.startsWith(n.target) && n.target.length >= 6);
		if (!net) throw new InvalidServiceRequestError(`network ${n.target} not found`, "ERR_NETWORK_NOT_FOUND");
		if (net.value.ingress)
			throw new InvalidServiceRequestError(`network ${n.target} is the ingress network: publish ports instead`);
	}
	const others = store.list("services").filter((s) => s.id !== self);
	checkPorts(others, spec);
	return spec;
}

/**
 * A spec's own fields and placement, and its published ports against the other services, checked
 * without writing and without what it names (networks, secrets may not exist yet): what `stack
 * deploy` asks of every service before it creates anything.
 */
export function validateServiceFields(store: ClusterStore, raw: unknown): ServiceSpec {
	const spec = validateServiceSpec(raw);
	validatePlacement({ placement: spec.task.placement });
	checkPorts(store.list("services"), spec);
	return spec;
}

/** Create (on the leader): the record only; the loops make its tasks. */
export async function createService(store: ClusterStore, raw: unknown): Promise<StoredRecord<Service>> {
	await store.barrier();
	const spec = checkServiceSpec(store, raw);
	if (store.byName("services", spec.name)) throw new NameInUseError("services", spec.name);
	const now = new Date().toISOString();
	const id = newTaskId();
	const value: Service = { id, spec, specVersion: 1, createdAt: now, updatedAt: now };
	const { versions } = await store.commit([{ op: "create", table: "services", id, value }]);
	return { id, version: versions[0]!, createdIndex: versions[0]!, value };
}

/** Scale (on the leader): a replicated service's (or job's) replica count; no new spec version. */
export async function scaleService(
	store: ClusterStore,
	ref: string,
	replicas: unknown,
): Promise<StoredRecord<Service>> {
	if (!Number.isSafeInteger(replicas) || (replicas as number) < 0 || (replicas as number) > 100_000)
		throw new InvalidServiceRequestError(`replicas must be an integer from 0 to 100000, got ${String(replicas)}`);
	const cur = findService(store, ref);
	const mode = cur.value.spec.mode;
	if (mode.kind !== "replicated" && mode.kind !== "replicated-job")
		throw new InvalidServiceRequestError(
			`scale can only be used with replicated or replicated-job mode (${cur.value.spec.name} is ${mode.kind})`,
		);
	const spec: ServiceSpec = {
		...cur.value.spec,
		mode:
			mode.kind === "replicated"
				? { kind: "replicated", replicas: replicas as number }
				: { ...mode, totalCompletions: replicas as number },
	};
	const value: Service = { ...cur.value, spec, updatedAt: new Date().toISOString() };
	const { versions } = await store.commit([
		{ op: "update", table: "services", id: cur.id, version: cur.version, value },
	]);
	return { ...cur, version: versions[0]!, value };
}

/** Remove (on the leader): the record goes; the orchestrator removes its tasks. */
export async function removeService(store: ClusterStore, ref: string): Promise<{ id: string; index: number }> {
	const cur = findService(store, ref);
	const { index } = await store.commit([{ op: "delete", table: "services", id: cur.id, version: cur.version }]);
	return { id: cur.id, index };
}

export interface ServiceRow {
	id: string;
	name: string;
	mode: string;
	/** Running tasks / wanted ("2/3"; global: running/nodes with a task). */
	running: number;
	desired: number;
	image: string;
	ports: string[];
	version: number;
}

const wanted = (t: Task) => t.desiredState === "running" || t.desiredState === "ready";

export function serviceRow(store: ClusterStore, s: StoredRecord<Service>): ServiceRow {
	const tasks = store.find("tasks", { by: "serviceId", value: s.id }).map((r) => r.value);
	const mode = s.value.spec.mode;
	const desired =
		mode.kind === "replicated"
			? mode.replicas
			: mode.kind === "replicated-job"
				? mode.totalCompletions
				: tasks.filter(wanted).length;
	const running =
		mode.kind === "replicated-job" || mode.kind === "global-job"
			? tasks.filter((t) => t.status.state === "complete").length
			: tasks.filter((t) => wanted(t) && t.status.state === "running").length;
	const ports = (s.value.endpoint?.ports ?? s.value.spec.endpoint.ports).map(
		(p) => `${p.publishMode === "host" ? "host:" : "*:"}${p.publishedPort ?? "?"}->${p.targetPort}/${p.protocol}`,
	);
	return {
		id: s.id,
		name: s.value.spec.name,
		mode: mode.kind,
		running,
		desired,
		image: s.value.spec.task.container.image,
		ports,
		version: s.version,
	};
}

export interface TaskRow {
	id: string;
	name: string;
	serviceId: string;
	slot?: number;
	nodeId?: string;
	node: string;
	platform: string;
	image: string;
	desiredState: string;
	state: string;
	since: string;
	error: string;
	ports: string[];
	/** The service spec version the task was made from (update progress compares it). */
	specVersion: number;
	/** The container's health check as the worker last reported it (tasks with a check). */
	health?: "starting" | "healthy" | "unhealthy";
}

/** `service ps` / `node ps` rows, newest first within a slot (Swarm's \_ history lines). */
export function taskRows(store: ClusterStore, tasks: Task[]): TaskRow[] {
	const nodes = new Map(store.list("nodes").map((n) => [n.id, n.value]));
	// Code-unit order, not localeCompare: its first call loads ICU's collator (~3 MB) for the
	// agent's life. Slots are numbers (replicated); a global task's place is its node id.
	const units = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
	const place = (a: Task, b: Task) =>
		typeof a.slot === "number" && typeof b.slot === "number"
			? a.slot - b.slot
			: units(String(a.slot ?? a.nodeId ?? ""), String(b.slot ?? b.nodeId ?? ""));
	return [...tasks]
		.sort(
			(a, b) => units(a.serviceName, b.serviceName) || place(a, b) || Date.parse(b.createdAt) - Date.parse(a.createdAt),
		)
		.map((t) => {
			const n = t.nodeId ? nodes.get(t.nodeId) : undefined;
			const p = n?.platform;
			return {
				id: t.id,
				name: `${t.serviceName}.${t.slot ?? t.nodeId ?? ""}`,
				serviceId: t.serviceId,
				...(t.slot !== undefined ? { slot: t.slot } : {}),
				...(t.nodeId ? { nodeId: t.nodeId } : {}),
				node: n?.hostname ?? "",
				platform: p ? [p.os, p.architecture, p.variant].filter(Boolean).join("/") : "",
				image: t.image,
				desiredState: t.desiredState,
				state: t.status.state,
				since: t.status.timestamp,
				error: t.status.err ?? "",
				ports: [],
				specVersion: t.specVersion,
				...(t.status.health ? { health: t.status.health } : {}),
			};
		});
}
