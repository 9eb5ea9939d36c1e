// `service update` and `service rollback` on the leader: the new spec validated whole, a stale
// --version refused, and the record that starts a rolling update (the updater loop carries it out).
import type { Service, ServiceSpec } from "../../services/index.ts";
import { type ClusterStore, type StoredRecord, VersionConflictError } from "../../store/index.ts";
import { InvalidServiceRequestError } from "../errors.ts";
import { checkServiceSpec, findService } from "../services.ts";
import { rolledBack } from "./decide.ts";
import { NoPreviousSpecError } from "./errors.ts";

export interface UpdateRequest {
	spec: unknown;
	/** The service record's version the change was made from (optimistic concurrency). */
	version?: unknown;
	/** Replace every task even when the task template did not change. */
	force?: unknown;
}

const checkVersion = (cur: StoredRecord<Service>, version: unknown) => {
	if (version === undefined || version === null) return;
	if (!Number.isSafeInteger(version) || (version as number) < 0)
		throw new InvalidServiceRequestError(`version must be a whole number, got ${String(version)}`);
	if (version !== cur.version) throw new VersionConflictError("services", cur.id, version as number, cur.version);
};

/** The next spec version: above every version this service has had, so no old task matches it. */
const nextVersion = (s: Service) => Math.max(s.specVersion, s.previousSpecVersion ?? 0) + 1;

/**
 * The record after a spec change: the old spec kept for rollback, and a new spec version (which
 * starts a rolling update) when the task template changed or `force`. Also used when a secret or
 * config a service uses gets a new version (agent/manager/secrets.ts).
 */
export function updatedService(cur: Service, spec: ServiceSpec, force = false): Service {
	const changed = force || JSON.stringify(spec.task) !== JSON.stringify(cur.spec.task);
	const now = new Date().toISOString();
	const value: Service = {
		...cur,
		spec,
		previousSpec: cur.spec,
		previousSpecVersion: cur.specVersion,
		specVersion: changed ? nextVersion(cur) : cur.specVersion,
		updatedAt: now,
	};
	if (changed) value.updateStatus = { state: "updating", startedAt: now, message: "update in progress" };
	return value;
}

export async function updateService(
	store: ClusterStore,
	ref: string,
	req: UpdateRequest,
): Promise<StoredRecord<Service>> {
	await store.barrier();
	const cur = findService(store, ref);
	checkVersion(cur, req.version);
	const raw = req.spec && typeof req.spec === "object" && !Array.isArray(req.spec) ? req.spec : {};
	const named = { ...(raw as Record<string, unknown>) };
	named.name ??= cur.value.spec.name;
	const spec = checkServiceSpec(store, named, cur.id);
	const was = cur.value.spec;
	if (spec.name !== was.name)
		throw new InvalidServiceRequestError(
			`a service cannot be renamed (${was.name} to ${spec.name}): create a new one`,
			"ERR_SERVICE_RENAME",
		);
	if (spec.mode.kind !== was.mode.kind)
		throw new InvalidServiceRequestError(
			`a service's mode cannot change (${was.mode.kind} to ${spec.mode.kind})`,
			"ERR_SERVICE_MODE_CHANGE",
		);
	// The same spec again (a stack re-deploy of an unchanged service): nothing to write, and the
	// previous spec (what a rollback returns to) stays.
	if (!req.force && JSON.stringify(spec) === JSON.stringify(was)) return cur;
	const value = updatedService(cur.value, spec, Boolean(req.force));
	const { versions } = await store.commit([
		{ op: "update", table: "services", id: cur.id, version: cur.version, value },
	]);
	return { ...cur, version: versions[0]!, value };
}

export async function rollbackService(
	store: ClusterStore,
	ref: string,
	req: { version?: unknown } = {},
): Promise<StoredRecord<Service>> {
	await store.barrier();
	const cur = findService(store, ref);
	checkVersion(cur, req.version);
	const value = rolledBack(cur.value, Date.now(), "manually requested rollback");
	if (!value) throw new NoPreviousSpecError(cur.value.spec.name);
	// Back to a spec whose tasks are the same as the current ones (a replicas-only change): nothing rolls.
	if (JSON.stringify(value.spec.task) === JSON.stringify(cur.value.spec.task)) {
		value.specVersion = cur.value.specVersion;
		value.updateStatus = {
			state: "rollback_completed",
			startedAt: value.updatedAt,
			completedAt: value.updatedAt,
			message: "rollback completed",
		};
	}
	const { versions } = await store.commit([
		{ op: "update", table: "services", id: cur.id, version: cur.version, value },
	]);
	return { ...cur, version: versions[0]!, value };
}
