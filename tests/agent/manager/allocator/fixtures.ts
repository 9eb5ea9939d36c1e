// Records for allocator tests: specs through the real validator, tasks as the orchestrator makes
// them, and a tiny in-memory "store" that applies the allocator's ops with version checks.
import type { AllocInput, AllocNetwork, AllocOp, Versioned } from "../../../../agent/manager/allocator/index.ts";
import { type Service, type Task, validateServiceSpec } from "../../../../agent/services/index.ts";

export const T0 = Date.parse("2025-01-01T00:00:00Z");
const iso = (n: number) => new Date(T0 + n * 1000).toISOString();

export class World {
	services: Array<Versioned<Service>> = [];
	tasks: Array<Versioned<Task>> = [];
	networks: Array<Versioned<AllocNetwork>> = [];
	private version = 1;
	private clock = 0;

	input(now = T0 + 1e6): AllocInput {
		return { services: this.services, tasks: this.tasks, networks: this.networks, now };
	}

	network(name: string, subnet: string, o: { ingress?: boolean } = {}): string {
		const id = `net${name.padEnd(22, "0")}`.slice(0, 25);
		const [a, b, c, d] = subnet.split("/")[0]!.split(".").map(Number);
		const gateway = [a, b, c, d! + 1].join(".");
		this.networks.push({ id, version: this.version++, value: { name, subnet, gateway, ingress: o.ingress ?? false } });
		return id;
	}

	service(name: string, raw: Record<string, unknown> = {}, replicas = 0): Versioned<Service> {
		const spec = validateServiceSpec({
			name,
			...raw,
			task: { container: { image: "web:1" }, ...((raw.task as object) ?? {}) },
		});
		const id = `svc${String(this.clock).padStart(5, "0")}${name}`;
		const at = iso(this.clock++);
		const r = { id, version: this.version++, value: { id, spec, specVersion: 1, createdAt: at, updatedAt: at } };
		this.services.push(r);
		for (let slot = 1; slot <= replicas; slot++) this.task(r, slot);
		return r;
	}

	task(svc: Versioned<Service>, slot: number): Versioned<Task> {
		const id = `tsk${String(this.clock).padStart(5, "0")}${svc.value.spec.name}.${slot}`;
		const at = iso(this.clock++);
		const value: Task = {
			id,
			serviceId: svc.id,
			serviceName: svc.value.spec.name,
			slot,
			specVersion: svc.value.specVersion,
			spec: svc.value.spec.task,
			image: svc.value.spec.task.container.image,
			desiredState: "running",
			status: { state: "new", message: "created", timestamp: at },
			networks: [],
			createdAt: at,
		};
		const r = { id, version: this.version++, value };
		this.tasks.push(r);
		return r;
	}

	/** Applies ops as the store would: each must name the record at its current version. */
	apply(ops: AllocOp[]): void {
		for (const op of ops) {
			const table: Array<Versioned<unknown>> = op.table === "services" ? this.services : this.tasks;
			const i = table.findIndex((r) => r.id === op.id);
			if (i < 0 || table[i]!.version !== op.version) throw new Error(`stale op on ${op.table}/${op.id}`);
			table[i] = { id: op.id, version: this.version++, value: structuredClone(op.value) };
		}
	}

	svc(name: string): Service {
		return this.services.find((r) => r.value.spec.name === name)!.value;
	}

	tasksOf(name: string): Task[] {
		return this.tasks.filter((r) => r.value.serviceName === name).map((r) => r.value);
	}

	setTask(id: string, f: (t: Task) => Task): void {
		const i = this.tasks.findIndex((r) => r.id === id);
		this.tasks[i] = { id, version: this.version++, value: f(structuredClone(this.tasks[i]!.value)) };
	}

	setService(name: string, f: (s: Service) => Service): void {
		const i = this.services.findIndex((r) => r.value.spec.name === name);
		this.services[i] = {
			id: this.services[i]!.id,
			version: this.version++,
			value: f(structuredClone(this.services[i]!.value)),
		};
	}
}
