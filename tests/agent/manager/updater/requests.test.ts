// service update on a real one-node store: the same spec again writes nothing (a stack re-deploy
// of an unchanged service keeps its record version and its previous spec); a replicas change
// writes without a new spec version; a task change starts a rolling update.
import t from "tap";
import { createService } from "../../../../agent/manager/services.ts";
import { updateService } from "../../../../agent/manager/updater/index.ts";
import { host, openStore } from "../../dispatch/fixtures.ts";

const spec = (replicas: number, args: string[]) => ({
	name: "web",
	mode: { kind: "replicated", replicas },
	task: { container: { image: "busybox", args } },
});

t.test("the same spec again writes nothing; a change writes, and rolls only when the tasks change", async (t) => {
	const store = await openStore(t, await host(t), { bootstrap: true });
	const created = await createService(store, spec(1, ["sleep", "1"]));
	const first = await updateService(store, "web", { spec: spec(2, ["sleep", "1"]), version: created.version });
	t.ok(first.version > created.version, "control: a replicas change is written");
	t.equal(first.value.specVersion, 1, "and does not start a rolling update");
	const same = await updateService(store, "web", { spec: spec(2, ["sleep", "1"]), version: first.version });
	t.equal(same.version, first.version, "the same spec: no write");
	t.equal(store.get("services", created.id)!.version, first.version, "the stored record is the one before");
	t.same(
		store.get("services", created.id)!.value.previousSpec?.mode,
		{ kind: "replicated", replicas: 1 },
		"its previous spec stays",
	);
	const forced = await updateService(store, "web", {
		spec: spec(2, ["sleep", "1"]),
		version: first.version,
		force: true,
	});
	t.equal(forced.value.specVersion, 2, "--force still replaces the tasks");
	const rolled = await updateService(store, "web", { spec: spec(2, ["sleep", "2"]), version: forced.version });
	t.equal(rolled.value.specVersion, 3, "a task change: a new spec version");
	t.equal(rolled.value.updateStatus?.state, "updating");
});
