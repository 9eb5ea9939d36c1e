// The allocator's leader loop over a fake store port: a pass on start, one after each change, a
// refused commit retried on the next change, and no passes after stop().
import t from "tap";
import { AllocatorComponent, type AllocatorSource, type AllocOp } from "../../../../agent/manager/allocator/index.ts";
import { waitFor } from "../../../helpers/index.ts";
import { World } from "./fixtures.ts";

const source = (w: World, o: { refuse?: () => boolean } = {}) => {
	const listeners = new Set<() => void>();
	const changed = () => {
		for (const l of listeners) l();
	};
	const commits: AllocOp[][] = [];
	const s: AllocatorSource = {
		read: () => ({ services: w.services, tasks: w.tasks, networks: w.networks }),
		commit: async (ops) => {
			if (o.refuse?.()) throw new Error("version conflict");
			commits.push(ops);
			w.apply(ops);
			changed();
		},
		subscribe: (f) => {
			listeners.add(f);
			return () => listeners.delete(f);
		},
	};
	return { s, changed, commits, listeners };
};

t.test("allocates on start and after changes; stops cleanly", async (t) => {
	const w = new World();
	w.network("back", "198.19.12.0/24");
	w.service("web", { task: { networks: [{ target: "back" }] } }, 2);
	const src = source(w);
	const c = new AllocatorComponent({ source: src.s, batch: 2 });
	c.start();
	t.teardown(() => c.stop());
	await waitFor("tasks allocated", () => w.tasksOf("web").every((x) => x.status.state === "pending"));
	t.same(
		src.commits.map((b) => b.length),
		[2, 1],
		"three ops in batches of two",
	);
	await waitFor("a quiet pass after its own writes", () => c.last?.ops.length === 0);

	const svc = w.services[0]!;
	w.task(svc, 3);
	src.changed();
	await waitFor("the new task allocated", () => w.tasksOf("web")[2]?.status.state === "pending");
	t.same(w.tasksOf("web")[2]!.networks[0]!.addresses, ["198.19.12.5/24"]);

	await c.stop();
	t.equal(src.listeners.size, 0, "unsubscribed");
	const passes = c.passes;
	w.task(svc, 4);
	src.changed();
	t.equal(c.passes, passes, "no pass after stop");
	t.equal(w.tasksOf("web")[3]!.status.state, "new");
});

t.test("a refused commit is retried on the next change", async (t) => {
	const w = new World();
	w.network("back", "198.19.13.0/24");
	w.service("web", { task: { networks: [{ target: "back" }] } }, 1);
	let refuse = true;
	const src = source(w, { refuse: () => refuse });
	const c = new AllocatorComponent({ source: src.s });
	c.start();
	t.teardown(() => c.stop());
	await waitFor("a first pass", () => c.passes >= 1);
	t.equal(w.tasksOf("web")[0]!.status.state, "new", "refused: nothing written");
	refuse = false;
	src.changed();
	await waitFor("allocated after the next change", () => w.tasksOf("web")[0]!.status.state === "pending");
});
