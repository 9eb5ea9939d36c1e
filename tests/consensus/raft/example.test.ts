import t from "tap";
import { kvMapDemo } from "../../../consensus/examples/kv-map.ts";

t.test("the README's replicated KV map example runs and replicates", async (t) => {
	const views = await kvMapDemo();
	t.same(Object.keys(views).sort(), ["a", "b", "c"]);
	for (const [id, view] of Object.entries(views)) t.same(view, { color: "blue", shape: "round" }, `server ${id}`);
});
