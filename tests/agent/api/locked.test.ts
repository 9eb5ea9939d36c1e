// A locked manager's API (autolock): every route but info, unlock and leave answers 423 ERR_LOCKED
// before its handler runs; unlocked, the same routes reach the agent again.
import t from "tap";
import { type AgentApi, agentRoutes, ControlServer, call, socketPath } from "../../../agent/api/index.ts";
import { KeysLockedError } from "../../../agent/keyring/index.ts";
import { tempDir } from "../../helpers/index.ts";

let locked = true;
const reached: string[] = [];
const reach = (what: string) => {
	reached.push(what);
	return { what };
};
const agent: AgentApi = {
	info: () => ({
		nodeId: "n",
		addrs: [],
		clusterId: "c",
		role: "manager",
		raft: null,
		directory: { version: 0, nodes: 0 },
		membership: null,
		...(locked ? { locked: true } : {}),
	}),
	init: async () => {
		throw new Error("not here");
	},
	join: async () => {
		throw new Error("not here");
	},
	joinToken: async () => ({ token: reach("join-token").what }),
	nodes: () => [],
	removeNode: async (id) => ({ id: reach(`rm ${id}`).what }),
	leave: async () => ({ left: reach("leave").what }),
	forceNewCluster: async () => {
		reach("force-new-cluster");
		throw new Error("not here");
	},
	managerOnly: () => {
		reach("managerOnly");
		throw new Error("no manager in this test");
	},
	unlock: async () => {
		reach("unlock");
		return { unlocked: true };
	},
	assertUnlocked: () => {
		if (locked) throw new KeysLockedError();
	},
};

const d = tempDir("api-locked-");
t.teardown(d.remove);
const server = new ControlServer(socketPath(d.path), agentRoutes(agent), { logger: { error() {} } });
await server.listen();
t.teardown(() => server.close());

const status = (method: "GET" | "POST" | "DELETE", path: string, body?: unknown) =>
	call(d.path, method, path, body).then(
		() => ({ status: 200, code: "" }),
		(e: { status: number; code: string }) => ({ status: e.status, code: e.code }),
	);

t.test("locked: 423 ERR_LOCKED for everything but info, unlock and leave", async (t) => {
	locked = true;
	for (const [m, p, b] of [
		["GET", "/v1/services", undefined],
		["GET", "/v1/nodes", undefined],
		["POST", "/v1/join-token", { role: "worker" }],
		["DELETE", "/v1/nodes/abc", {}],
		["POST", "/v1/unlock-key", {}],
		["POST", "/v1/swarm/update", { autolock: false }],
		["POST", "/v1/force-new-cluster", {}],
	] as const)
		t.same(await status(m, p, b), { status: 423, code: "ERR_LOCKED" }, `${m} ${p}`);
	t.same(reached, [], "no handler ran");
	const i = await call<{ locked?: boolean }>(d.path, "GET", "/v1/info");
	t.equal(i.locked, true, "info answers, and says locked");
	t.same(await status("POST", "/v1/unlock", { key: "TSWKEY-1-x" }), { status: 200, code: "" }, "unlock answers");
	t.same(await status("POST", "/v1/leave", {}), { status: 200, code: "" }, "leave answers");
	t.same(reached, ["unlock", "leave"]);
});

t.test("unlocked: the same routes reach the agent (control)", async (t) => {
	locked = false;
	reached.length = 0;
	t.same(await status("POST", "/v1/join-token", { role: "worker" }), { status: 200, code: "" });
	t.equal((await status("GET", "/v1/services")).status, 500, "the fake manager's own error, not 423");
	t.same(reached, ["join-token", "managerOnly"]);
});
