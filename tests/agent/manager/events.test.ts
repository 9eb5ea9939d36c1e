// tsswarm events on a one-manager store: the recent past replayed with --since, filtered as docker's
// (type, event, name), then live events as they are applied; --until ends the stream.
import t from "tap";
import { waitFor } from "../../helpers/index.ts";
import { oneManager } from "../../helpers/manager.ts";

interface Ev {
	type: string;
	action: string;
	id: string;
	attributes: Record<string, string>;
}

t.test("events: replay since, filters, live events, until", async (t) => {
	const { m } = await oneManager(t, "tsswarm-events-");
	await m.createNetwork({ name: "app" });

	const collect = async (q: Record<string, unknown>, ac = new AbortController()) => {
		const out: Ev[] = [];
		for await (const e of m.events(q, ac.signal)) out.push(e as Ev);
		return out;
	};
	const until = new Date(Date.now() + 200).toISOString();
	const past = await collect({ since: "10m", until });
	t.ok(
		past.some((e) => e.type === "cluster" && e.action === "create"),
		"the cluster record's creation is replayed",
	);
	t.ok(past.some((e) => e.type === "network" && e.action === "create" && e.attributes.name === "ingress"));
	const nets = await collect({ since: "10m", until, filters: ["type=network", "name=app"] });
	t.same(
		nets.map((e) => `${e.type} ${e.action} ${e.attributes.name}`),
		["network create app"],
		"filters narrow it",
	);
	t.same(
		await collect({ since: "10m", until, filters: ["type=service"] }),
		[],
		"no service events (positive control above)",
	);

	// Live: a stream started now sees a network created after it, and ends on abort.
	const ac = new AbortController();
	const live: Ev[] = [];
	const running = (async () => {
		for await (const e of m.events({ filters: ["type=network"] }, ac.signal)) live.push(e as Ev);
	})();
	await m.createNetwork({ name: "later" });
	await waitFor("the live event", () => live.some((e) => e.attributes.name === "later"), { timeoutMs: 10_000 });
	t.notOk(
		live.some((e) => e.attributes.name === "app"),
		"without --since the past is not replayed",
	);
	await m.removeNetwork("later");
	await waitFor("the remove event", () => live.some((e) => e.action === "remove"), { timeoutMs: 10_000 });
	ac.abort();
	await running;
	t.throws(
		() => m.events({ filters: ["colour=red"] }, ac.signal),
		/invalid filter/,
		"an unknown filter key is refused",
	);
});
