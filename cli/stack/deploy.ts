// stack deploy, client-side as docker's is: every check that can fail (references, external
// objects, mode changes, image digests) runs before the first write; then networks, secrets and
// configs, and services (dependencies first; a new service whose depends_on says service_healthy
// waits for that service's tasks), and --prune. A service whose spec did not change is left alone
// (the manager writes nothing); one that changed rolls through the update machinery.
import type {
	NetworkCreateRequest,
	NetworkInspect,
	ServiceRecord,
	ServiceRow,
	TaskRow,
} from "../../agent/api/index.ts";
import { IMAGE_LABEL, NAMESPACE_LABEL, type PlannedService, type StackPlan } from "./convert.ts";
import { ComposeError, ComposeReferenceError, StackDependencyTimeoutError } from "./errors.ts";
import type { ObjectKind, ObjectPlan } from "./objects.ts";

/** A secret or config as its ls/inspect shows it (the data never). */
export interface ObjectInfo {
	id: string;
	name: string;
	labels: Record<string, string>;
}

/** What deploy, ls, ps, services and rm need of the agent (api.ts implements it on the local API). */
export interface StackApi {
	networks(): Promise<NetworkInspect[]>;
	createNetwork(r: NetworkCreateRequest): Promise<NetworkInspect>;
	removeNetwork(ref: string): Promise<unknown>;
	services(): Promise<ServiceRow[]>;
	inspect(ref: string): Promise<ServiceRecord>;
	/** The agent's check of a spec's fields (nothing written); throws its refusal naming the field. */
	validate(spec: Record<string, unknown>): Promise<unknown>;
	create(spec: Record<string, unknown>): Promise<ServiceRecord>;
	update(ref: string, spec: Record<string, unknown>, version: number): Promise<ServiceRecord>;
	remove(ref: string): Promise<unknown>;
	tasks(ref: string): Promise<TaskRow[]>;
	objects(kind: ObjectKind): Promise<ObjectInfo[]>;
	createObject(
		kind: ObjectKind,
		o: { name: string; data: string; labels: Record<string, string> },
	): Promise<ObjectInfo>;
	updateObject(kind: ObjectKind, ref: string, o: { data: string; labels: Record<string, string> }): Promise<ObjectInfo>;
	removeObject(kind: ObjectKind, ref: string): Promise<unknown>;
}

export type ResolveMode = "always" | "changed" | "never";

export interface DeployOptions {
	prune?: boolean;
	resolveImage?: ResolveMode;
	/** Pins an image (service create's resolveImage). */
	resolve: (image: string) => Promise<{ image: string; platforms: Array<Record<string, string>> }>;
	out?: (line: string) => void;
	/** How long a new service waits for a service_healthy dependency (default 180 s). */
	dependencyTimeoutMs?: number;
	pollMs?: number;
}

export interface DeployResult {
	created: string[];
	updated: string[];
	unchanged: string[];
	removed: string[];
}

/** The services of a stack: named STACK_... and labelled with its namespace. */
export async function stackServices(api: StackApi, stack: string): Promise<ServiceRecord[]> {
	const rows = (await api.services()).filter((r) => r.name.startsWith(`${stack}_`));
	const out: ServiceRecord[] = [];
	for (const r of rows) {
		const s = await api.inspect(r.id);
		if (s.value.spec.labels[NAMESPACE_LABEL] === stack) out.push(s);
	}
	return out;
}

const inStack = (labels: Record<string, string> | undefined, stack: string) => labels?.[NAMESPACE_LABEL] === stack;

export async function deployStack(
	api: StackApi,
	plan: StackPlan,
	objects: ObjectPlan,
	o: DeployOptions,
): Promise<DeployResult> {
	const say = o.out ?? ((l: string) => process.stdout.write(`${l}\n`));
	const { stack } = plan;
	const result: DeployResult = { created: [], updated: [], unchanged: [], removed: [] };

	// ---- checks: nothing is written until all pass ----
	const nets = await api.networks();
	const netByName = new Map(nets.map((n) => [n.Name, n]));
	for (const n of plan.networks) {
		const have = netByName.get(n.name);
		if (n.external) {
			if (!have)
				throw new ComposeReferenceError(
					`network "${n.name}" is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed`,
				);
		} else if (have && !inStack(have.Labels, stack))
			throw new ComposeError(
				`network ${n.name} already exists and is not part of stack ${stack} (remove it, or declare it external)`,
				"ERR_STACK_NAME_CONFLICT",
			);
	}
	const haveObjects = new Map<ObjectKind, ObjectInfo[]>();
	for (const kind of new Set(objects.objects.map((x) => x.kind))) haveObjects.set(kind, await api.objects(kind));
	const findObject = (kind: ObjectKind, name: string) => haveObjects.get(kind)?.find((x) => x.name === name);
	for (const obj of objects.objects) {
		const have = findObject(obj.kind, obj.name);
		if (obj.external && !have)
			throw new ComposeReferenceError(
				`${obj.kind} "${obj.name}" is declared as external, but could not be found (tsswarm ${obj.kind} create ${obj.name} FILE)`,
			);
		if (!obj.external && have && !inStack(have.labels, stack))
			throw new ComposeError(
				`${obj.kind} ${obj.name} already exists and is not part of stack ${stack} (declare it external)`,
				"ERR_STACK_NAME_CONFLICT",
			);
	}
	const existing = new Map((await stackServices(api, stack)).map((s) => [s.value.spec.name, s]));
	const allNames = new Map((await api.services()).map((r) => [r.name, r]));
	for (const s of plan.services) {
		const cur = existing.get(s.name);
		const mode = (s.spec.mode as { kind: string }).kind;
		if (cur && cur.value.spec.mode.kind !== mode)
			throw new ComposeError(
				`service ${s.name}: its mode cannot change from ${cur.value.spec.mode.kind} to ${mode} (tsswarm service rm ${s.name} first)`,
				"ERR_SERVICE_MODE_CHANGE",
			);
		if (!cur && allNames.has(s.name))
			throw new ComposeError(
				`service ${s.name} already exists and is not part of stack ${stack}`,
				"ERR_STACK_NAME_CONFLICT",
			);
	}
	const specs = new Map<string, Record<string, unknown>>();
	for (const s of plan.services) {
		const spec = await pinned(s, existing.get(s.name), o);
		try {
			await api.validate(spec);
		} catch (err) {
			throw new ComposeError(`service ${s.key}: ${(err as Error).message}`, "ERR_COMPOSE_SPEC");
		}
		specs.set(s.key, spec);
	}

	// ---- writes ----
	for (const n of plan.networks) {
		if (n.external || netByName.has(n.name) || !n.create) continue;
		say(`Creating network ${n.name}`);
		await api.createNetwork(n.create);
	}
	const ids = new Map<string, string>();
	for (const obj of objects.objects) {
		const have = findObject(obj.kind, obj.name);
		if (obj.external) {
			ids.set(`${obj.kind}/${obj.name}`, have!.id);
			continue;
		}
		const data = obj.data!.toString("base64");
		if (have) {
			say(`Updating ${obj.kind} ${obj.name}`);
			const r = await api.updateObject(obj.kind, have.id, { data, labels: obj.labels });
			ids.set(`${obj.kind}/${obj.name}`, r.id ?? have.id);
		} else {
			say(`Creating ${obj.kind} ${obj.name}`);
			ids.set(
				`${obj.kind}/${obj.name}`,
				(await api.createObject(obj.kind, { name: obj.name, data, labels: obj.labels })).id,
			);
		}
	}
	for (const s of plan.services) {
		const spec = specs.get(s.key)!;
		const uses = objects.uses.get(s.key) ?? [];
		if (uses.length) {
			const task = spec.task as Record<string, unknown>;
			for (const kind of ["secret", "config"] as const) {
				const list = uses
					.filter((u) => u.kind === kind)
					.map((u) => ({
						[`${kind}Id`]: ids.get(`${kind}/${u.name}`)!,
						[`${kind}Name`]: u.name,
						target: u.target,
						uid: u.uid,
						gid: u.gid,
						mode: u.mode,
					}));
				if (list.length) task[`${kind}s`] = list;
			}
		}
		const known = existing.get(s.name);
		if (known) {
			// Read again: a secret or config update above may have rolled this service meanwhile.
			const cur = await api.inspect(known.id);
			const r = await api.update(cur.id, spec, cur.version);
			if (r.version === cur.version) result.unchanged.push(s.name);
			else {
				say(`Updating service ${s.name} (id: ${cur.id})`);
				result.updated.push(s.name);
			}
			continue;
		}
		for (const [dep, condition] of Object.entries(s.dependsOn)) {
			if (condition !== "service_healthy" && condition !== "service_completed_successfully") continue;
			const d = plan.services.find((x) => x.key === dep)!;
			say(
				`Waiting for ${d.name} to be ${condition === "service_healthy" ? "healthy" : "completed"} (depends_on of ${s.key})`,
			);
			await waitFor(api, d.name, s.key, condition, o);
		}
		say(`Creating service ${s.name}`);
		await api.create(spec);
		result.created.push(s.name);
	}
	if (o.prune) {
		const wanted = new Set(plan.services.map((s) => s.name));
		for (const [name, s] of existing) {
			if (wanted.has(name)) continue;
			say(`Removing service ${name}`);
			await api.remove(s.id);
			result.removed.push(name);
		}
	}
	return result;
}

/** The spec with its image pinned as --resolve-image says (changed: only a different image is resolved again). */
async function pinned(s: PlannedService, cur: ServiceRecord | undefined, o: DeployOptions) {
	const spec = structuredClone(s.spec);
	const task = spec.task as { container: { image: string }; placement: Record<string, unknown> };
	const mode = o.resolveImage ?? "always";
	if (mode === "never") return spec;
	if (mode === "changed" && cur && cur.value.spec.labels[IMAGE_LABEL] === s.image) {
		task.container.image = cur.value.spec.task.container.image;
		if (cur.value.spec.task.placement.platforms.length)
			task.placement.platforms = cur.value.spec.task.placement.platforms;
		return spec;
	}
	const r = await o.resolve(s.image);
	task.container.image = r.image;
	if (r.platforms.length) task.placement.platforms = r.platforms;
	return spec;
}

/** Until every wanted task of `name` runs (and is healthy when it has a check), or has completed. */
async function waitFor(
	api: StackApi,
	name: string,
	dependent: string,
	condition: string,
	o: DeployOptions,
): Promise<void> {
	const timeout = o.dependencyTimeoutMs ?? 180_000;
	const deadline = Date.now() + timeout;
	let state = "not started";
	for (;;) {
		const svc = await api.inspect(name);
		const rows = await api.tasks(name);
		const live = rows.filter(
			(r) => r.desiredState === "running" || r.desiredState === "ready" || r.desiredState === "complete",
		);
		const mode = svc.value.spec.mode;
		const want =
			mode.kind === "replicated"
				? mode.replicas
				: mode.kind === "replicated-job"
					? mode.totalCompletions
					: Math.max(1, live.length);
		const checked =
			Boolean(svc.value.spec.task.container.healthcheck) &&
			svc.value.spec.task.container.healthcheck!.test[0] !== "NONE";
		const done =
			condition === "service_completed_successfully"
				? rows.filter((r) => r.state === "complete").length
				: live.filter((r) => r.state === "running" && (!checked || r.health === "healthy")).length;
		state = `${done} of ${want} tasks ${condition === "service_healthy" ? (checked ? "running and healthy" : "running") : "completed"}`;
		if (done >= want) return;
		if (Date.now() > deadline)
			throw new StackDependencyTimeoutError(dependent, name, Math.round(timeout / 1000), state);
		await new Promise((r) => setTimeout(r, o.pollMs ?? 500));
	}
}

/** stack rm: the stack's services, then its networks, secrets and configs. */
export async function removeStack(api: StackApi, stack: string, say: (l: string) => void): Promise<number> {
	let found = 0;
	for (const s of await stackServices(api, stack)) {
		say(`Removing service ${s.value.spec.name}`);
		await api.remove(s.id);
		found++;
	}
	for (const kind of ["secret", "config"] as const) {
		let list: ObjectInfo[];
		try {
			list = await api.objects(kind);
		} catch (err) {
			// An agent without secrets/configs yet: nothing of that kind to remove.
			if ((err as { status?: number }).status === 404) continue;
			throw err;
		}
		for (const x of list.filter((x) => inStack(x.labels, stack))) {
			say(`Removing ${kind} ${x.name}`);
			await api.removeObject(kind, x.id);
			found++;
		}
	}
	for (const n of (await api.networks()).filter((n) => inStack(n.Labels, stack))) {
		say(`Removing network ${n.Name}`);
		await api.removeNetwork(n.Id);
		found++;
	}
	return found;
}
