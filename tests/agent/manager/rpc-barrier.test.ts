// agent/manager/rpc.ts: a leader runs a request only after a barrier of its term (its state machine
// has applied what earlier terms committed); once per term, and local requests need none.
import t from "tap";
import type { Host } from "../../../agent/host/index.ts";
import { LeaderRpc, type RpcStore } from "../../../agent/manager/rpc.ts";
import { waitFor } from "../../helpers/index.ts";

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

function store() {
	const s = {
		term: 1,
		barriers: 0,
		release: [] as Array<() => void>,
	};
	const view: RpcStore = {
		id: "self",
		configuration: () => ({ servers: [{ id: "self", address: "", suffrage: "voter" }] }),
		isLeader: () => true,
		leader: () => ({ id: "self", address: "" }),
		waitForLeader: async () => ({ id: "self", address: "" }),
		barrier: () => {
			s.barriers++;
			return new Promise<void>((r) => s.release.push(r));
		},
		raftStats: () => ({ term: s.term }),
	};
	return { s, view };
}

t.test("a request waits for the term's barrier, once per term", async (t) => {
	const { s, view } = store();
	// The local path never touches the host: the leader is this node.
	const rpc = new LeaderRpc({} as Host, view, quiet);
	const ran: string[] = [];
	rpc.register("write", async (body) => {
		ran.push(String(body.n));
		return true;
	});
	rpc.register("read", async () => "local", { local: true });
	const first = rpc.call("write", { n: 1 });
	await waitFor("the barrier", async () => s.barriers === 1, { timeoutMs: 5000, intervalMs: 10 });
	t.equal(await rpc.call("read", {}), "local", "a local request needs no barrier");
	await new Promise((r) => setTimeout(r, 100));
	t.same(ran, [], "the write waits while the barrier is pending");
	s.release.shift()!();
	t.equal(await first, true);
	t.same(ran, ["1"], "then it runs");
	await rpc.call("write", { n: 2 });
	t.equal(s.barriers, 1, "the same term: no second barrier");
	s.term = 2;
	const third = rpc.call("write", { n: 3 });
	await waitFor("a barrier for the new term", async () => s.barriers === 2, { timeoutMs: 5000, intervalMs: 10 });
	s.release.shift()!();
	await third;
	t.same(ran, ["1", "2", "3"]);
});
