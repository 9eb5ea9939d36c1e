// agent/manager/rpc.ts: a manager the leader no longer counts as one (autopilot demoted it, its
// replica is on the way out) reads what a worker reads, not the leader's note about a peer id.
import t from "tap";
import { Host, MemoryAllowList } from "../../../agent/host/index.ts";
import { LeaderRpc, type RpcStore } from "../../../agent/manager/rpc.ts";
import { NotManagerError } from "../../../agent/store/index.ts";
import { tempDir } from "../../helpers/index.ts";

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

t.test("a request forwarded by a node outside the leader's configuration: NotManagerError", async (t) => {
	const dirs = [tempDir("tsswarm-rpc-leader-"), tempDir("tsswarm-rpc-asker-")];
	t.teardown(() => {
		for (const d of dirs) d.remove();
	});
	const allows = [new MemoryAllowList(), new MemoryAllowList()];
	const [leader, asker] = await Promise.all(
		dirs.map((d, i) => Host.create({ dataDir: d.path, listen: ["/ip4/127.0.0.1/tcp/0"], allowList: allows[i]! })),
	);
	t.teardown(() => Promise.all([leader!.stop(), asker!.stop()]));
	allows[0]!.add(asker!.peerId);
	allows[1]!.add(leader!.peerId);
	const addr = leader!.addrs().find((a) => a.includes("/tcp/"))!;
	// The leader's configuration: itself and, while `askerVotes`, the asker.
	let askerVotes = true;
	const leaderView: RpcStore = {
		id: leader!.peerId,
		configuration: () => ({
			servers: [
				{ id: leader!.peerId, address: addr, suffrage: "voter" },
				...(askerVotes ? [{ id: asker!.peerId, address: "", suffrage: "voter" as const }] : []),
			],
		}),
		isLeader: () => true,
		leader: () => ({ id: leader!.peerId, address: addr }),
		waitForLeader: async () => ({ id: leader!.peerId, address: addr }),
		barrier: async () => {},
		raftStats: () => ({ term: 1 }),
	};
	const askerView: RpcStore = {
		...leaderView,
		id: asker!.peerId,
		isLeader: () => false,
	};
	const onLeader = new LeaderRpc(leader!, leaderView, quiet);
	onLeader.register("network.create", async () => "created");
	await onLeader.start();
	t.teardown(() => onLeader.stop());
	const rpc = new LeaderRpc(asker!, askerView, quiet);

	t.equal(await rpc.call("network.create", {}), "created", "control: a server of the configuration is answered");
	askerVotes = false;
	const err = await rpc.call("network.create", {}).then(
		() => undefined,
		(e: unknown) => e,
	);
	t.ok(err instanceof NotManagerError, `the class a worker's request gets (got ${String(err)})`);
	t.equal((err as NotManagerError).code, "ERR_NOT_MANAGER");
	t.match((err as Error).message, /not a manager/);
});
