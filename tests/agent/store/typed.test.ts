// Typed access: each table's getters return its object type, ops are checked against the table's
// type, and no cast is needed (or allowed: no `as unknown as` in the store or the manager). The
// lines marked ts-expect-error are the compile-time half: `npm run check` fails if any of them compiles.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import {
	type ClusterStore,
	type Network,
	type Op,
	type Service,
	type StoredRecord,
	StoreState,
	type Task,
	validateTransaction,
} from "../../../agent/store/index.ts";
import { service, task } from "./fixtures.ts";

// Never called: it only has to compile (tsc checks tests/), against the ClusterStore surface.
export function compileOnly(store: ClusterStore): void {
	const s: StoredRecord<Service> | undefined = store.get("services", "x");
	const name: string | undefined = s?.value.spec.name;
	const onNode: Task[] = store.find("tasks", { by: "nodeId", value: "p1" }).map((r) => r.value);
	const net: Network | undefined = store.byName("networks", "app")?.value;
	const managers = store.find("nodes", { by: "role", value: "manager" }).map((r) => r.value.hostname);
	void [name, onNode, net, managers];
	// @ts-expect-error a task has no spec.name: the type of the table is the record's
	store.get("tasks", "x")?.value.spec.name;
	// @ts-expect-error tasks have no index "hostname"
	store.find("tasks", { by: "hostname", value: "a" });
	// @ts-expect-error networks have no secondary index
	store.find("networks", { by: "name", value: "a" });
	// @ts-expect-error tasks are not a named table
	store.byName("tasks", "a");
	// @ts-expect-error a service value in the tasks table
	const bad: Op = { op: "create", table: "tasks", id: "x", value: service("x", "web") };
	void bad;
	(async () => {
		for await (const ev of store.watch({ table: "tasks", filter: (e) => e.record.value.nodeId === "p1" })) {
			const d: Task["desiredState"] = ev.record.value.desiredState;
			void d;
			// @ts-expect-error a task event's record is a task
			void ev.record.value.spec.name;
		}
	})();
}

t.test("typed reads at run time: the value is the object written", async (t) => {
	const s = new StoreState();
	s.apply(
		validateTransaction({
			ops: [
				{ op: "create", table: "services", id: "sv", value: service("sv", "web") },
				{ op: "create", table: "tasks", id: "t1", value: task("t1", { serviceId: "sv", nodeId: "p1" }) },
			],
		}),
		1,
	);
	t.equal(s.byName("services", "web")?.value.spec.mode.kind, "replicated");
	t.same(
		s.find("tasks", { by: "serviceId", value: "sv" }).map((r) => r.value.nodeId),
		["p1"],
	);
});

t.test("no `as unknown as` in agent/store or agent/manager", async (t) => {
	const root = new URL("../../../agent/", import.meta.url).pathname;
	const found: string[] = [];
	let files = 0;
	for (const dir of ["store", "manager"]) {
		for (const f of readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })) {
			if (!f.endsWith(".ts")) continue;
			files++;
			readFileSync(join(root, dir, f), "utf8")
				.split("\n")
				.forEach((line, i) => {
					if (line.includes("as unknown as")) found.push(`${dir}/${f}:${i + 1}`);
				});
		}
	}
	t.ok(files >= 8, `the scan saw the sources (${files} files)`);
	t.same(found, [], "no double casts");
});
