// A replicated key-value map on raft-ts in about forty lines: three servers, in-memory stores and
// network. Run it: node consensus/examples/kv-map.ts
import { pack, unpack } from "msgpackr";
import { defaultConfig, type FSM, MemLogStore, MemNetwork, MemSnapshotStore, MemStableStore, Raft } from "../index.ts";

class KvMap implements FSM {
	readonly map = new Map<string, string>();
	apply(entry: { data: Uint8Array }) {
		const { key, value } = unpack(entry.data) as { key: string; value: string };
		this.map.set(key, value);
		return this.map.size;
	}
	snapshot() {
		const data = pack([...this.map]);
		return { persist: (sink: { write(b: Uint8Array): Promise<void> }) => sink.write(data), release() {} };
	}
	restore(data: Uint8Array) {
		this.map.clear();
		for (const [k, v] of unpack(data) as Array<[string, string]>) this.map.set(k, v);
	}
}

export async function kvMapDemo(): Promise<Record<string, Record<string, string>>> {
	const net = new MemNetwork();
	const ids = ["a", "b", "c"];
	const servers = ids.map((id) => ({ id, address: id, suffrage: "voter" as const }));
	const nodes = await Promise.all(
		ids.map(async (id) => {
			const [logs, stable, fsm] = [new MemLogStore(), new MemStableStore(), new KvMap()];
			await Raft.bootstrap(logs, stable, { servers });
			const raft = new Raft(
				{ ...defaultConfig(id), tickMs: 10 },
				fsm,
				logs,
				stable,
				new MemSnapshotStore(),
				net.transport(id),
			);
			await raft.start();
			return { id, raft, fsm };
		}),
	);
	const leader = await new Promise<(typeof nodes)[number]>((ok) => {
		for (const n of nodes) n.raft.once("leader", ({ id }) => ok(nodes.find((x) => x.id === id)!));
	});
	await leader.raft.apply(pack({ key: "color", value: "blue" }));
	await leader.raft.apply(pack({ key: "shape", value: "round" }));
	await leader.raft.barrier();
	// The barrier is applied on the leader; wait until every follower applied as far.
	const index = leader.raft.stats().appliedIndex;
	await Promise.all(nodes.map((n) => n.raft.waitForApplied(index, { timeoutMs: 5000 })));
	const views = Object.fromEntries(nodes.map((n) => [n.id, Object.fromEntries(n.fsm.map)]));
	await Promise.all(nodes.map((n) => n.raft.shutdown()));
	return views;
}

if (import.meta.main) console.log(await kvMapDemo());
