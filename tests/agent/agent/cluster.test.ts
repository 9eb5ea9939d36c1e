import { spawn } from "node:child_process";
import { existsSync, openSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { netnsArgv } from "../../../cli/lab/index.ts";
import { waitFor } from "../../helpers/index.ts";
import { withLab } from "../../helpers/lab.ts";

const cli = new URL("../../../cli/tsswarm", import.meta.url).pathname;

t.test("agents in a 3-node lab: init, join with real tokens, membership, failure detection", async (t) => {
	const lab = await withLab(t, { nodes: 3 });
	// One agent per node, in the node's namespace (the lab's teardown ends them).
	for (const n of lab.nodes) {
		const log = openSync(join(n.dir, "agent.log"), "a");
		const [cmd, ...args] = netnsArgv(lab.record, n.name, [cli, "agent", "--listen-addr", `${n.address}:2377`]);
		spawn(cmd!, args, {
			stdio: ["ignore", log, log],
			env: { ...process.env, TSSWARM_DATA_ROOT: n.dir, TSSWARM_NODE: n.name },
			detached: true,
		}).unref();
	}
	for (const n of lab.nodes)
		await waitFor(`${n.name}'s agent socket`, () => existsSync(join(n.dir, "tsswarm.sock")), { timeoutMs: 20_000 });
	const init = await lab.exec("n1", [cli, "init"]);
	t.equal(init.code, 0, init.stderr);
	const token = /TSWARM-1-[a-z2-7]{25}-[a-z2-7]{32}/.exec(init.stdout)?.[0];
	t.ok(token, "init printed a worker token");
	t.match(init.stdout, /tsswarm join --token TSWARM-1-\S+ 198\.18\.0\.1:2377/);

	const bad = await lab.exec("n3", [
		cli,
		"join",
		"--token",
		token!.replace(/-[a-z2-7]{32}$/, `-${"a".repeat(32)}`),
		"198.18.0.1:2377",
	]);
	t.equal(bad.code, 1, "a wrong secret fails");
	t.match(bad.stderr, /^tsswarm: join refused by the cluster: invalid or rotated token/);
	for (const n of ["n2", "n3"]) {
		const j = await lab.exec(n, [cli, "join", "--token", token!, "198.18.0.1:2377"]);
		t.equal(j.code, 0, `${n} joins (${j.stderr.trim()})`);
	}
	const nodes = async (on: string) =>
		JSON.parse((await lab.exec(on, [cli, "node", "ls", "--format", "json"])).stdout) as Array<{
			addr: string;
			state: string;
			role: string;
		}>;
	await waitFor(
		"all three see all three",
		async () => {
			for (const n of lab.nodes) {
				const ns = await nodes(n.name);
				if (ns.filter((x) => x.state === "alive").length !== 3) return false;
			}
			return true;
		},
		{ timeoutMs: 20_000 },
	);
	const view = await nodes("n2");
	t.same(view.map((x) => `${x.addr}:${x.role}`).sort(), [
		"198.18.0.1:2377:manager",
		"198.18.0.2:2377:worker",
		"198.18.0.3:2377:worker",
	]);

	// SIGKILL n3's agent: the others mark it down.
	const { stdout } = await lab.exec("n1", ["ip", "netns", "pids", lab.nodes[2]!.netns]);
	const agentPids = stdout.split(/\s+/).filter(Boolean).map(Number);
	t.ok(agentPids.length > 0, "n3's agent runs in n3's namespace");
	const t0 = Date.now();
	for (const p of agentPids) process.kill(p, "SIGKILL");
	await waitFor(
		"n1 and n2 mark n3 down",
		async () =>
			(await nodes("n1")).find((x) => x.addr.startsWith("198.18.0.3"))?.state === "dead" &&
			(await nodes("n2")).find((x) => x.addr.startsWith("198.18.0.3"))?.state === "dead",
		{ timeoutMs: 20_000, intervalMs: 200 },
	);
	t.ok(Date.now() - t0 < 15_000, `detected in ${Date.now() - t0} ms (including CLI round trips)`);
});
