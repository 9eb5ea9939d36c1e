// Lazy loading by role: an agent loads the manager side (agent/manager: store replica, leader loops)
// only when it becomes a manager; a worker never does. Traced from source with a load hook.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { socketPath } from "../../agent/api/index.ts";
import { tempDir, waitFor } from "../helpers/index.ts";

const repo = new URL("../..", import.meta.url).pathname;
const node = join(repo, "node_modules", ".bin", "node");
const hook = join(repo, "tests", "release", "load-trace.ts");
const cli = join(repo, "cli", "tsswarm.ts");
const MANAGER = "/agent/manager/manager.ts";

/** An agent from source on 127.0.0.1:port, its data root and module trace in a temp dir. */
function agent(name: string, port: number) {
	const dir = tempDir(`tsswarm-lazy-${name}-`);
	const trace = join(dir.path, "modules.txt");
	const env = { ...process.env, TSSWARM_DATA_ROOT: dir.path, TSSWARM_NODE: name, TSSWARM_LOAD_TRACE: trace };
	const child: ChildProcess = spawn(node, ["--import", hook, cli, "agent", "--listen-addr", `127.0.0.1:${port}`], {
		stdio: ["ignore", "ignore", "inherit"],
		env,
	});
	const exited = new Promise((r) => child.once("exit", r));
	t.teardown(async () => {
		if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
		await exited;
		dir.remove();
	});
	return {
		dir: dir.path,
		loaded: (suffix: string) => (existsSync(trace) ? readFileSync(trace, "utf8") : "").includes(suffix),
		cli: (args: string[]) => spawnSync(node, [cli, ...args], { encoding: "utf8", env, timeout: 60_000 }),
		ready: () => waitFor(`${name}'s socket`, () => existsSync(socketPath(dir.path)), { timeoutMs: 30_000 }),
	};
}

t.test("a worker never loads agent/manager; a manager loads it when it becomes one", async (t) => {
	const port = 20000 + Math.floor(Math.random() * 20000);
	const a = agent("lazy1", port);
	const b = agent("lazy2", port + 1);
	await a.ready();
	await b.ready();
	t.ok(a.loaded("/agent/agent.ts"), "the trace sees the agent's own modules (the hook works)");
	t.notOk(a.loaded(MANAGER), "an agent in no cluster has not loaded the manager");

	const init = a.cli(["init"]);
	t.equal(init.status, 0, init.stderr);
	t.ok(a.loaded(MANAGER), "init made a manager: it loaded agent/manager (positive control)");
	const token = /TSWARM-1-[a-z2-7]+-[a-z2-7]+/.exec(init.stdout)?.[0];
	const join1 = b.cli(["join", "--token", token!, `127.0.0.1:${port}`]);
	t.equal(join1.status, 0, join1.stderr);
	t.match(join1.stdout, /as a worker/);
	await waitFor(
		"the manager to list the worker alive",
		() => {
			const ls = a.cli(["node", "ls", "--format", "json"]);
			return (
				ls.status === 0 &&
				(JSON.parse(ls.stdout) as { state: string }[]).filter((n) => n.state === "alive").length === 2
			);
		},
		{ timeoutMs: 30_000, intervalMs: 250 },
	);
	t.notOk(b.loaded(MANAGER), "the worker has not loaded agent/manager/manager.ts");
	// A manager-only request on a worker still gets NotManagerError, and the protocol named in agent.ts
	// is the manager's: the worker's directory sync reached the manager (it listed the joiner).
	const nets = b.cli(["network", "ls"]);
	t.not(nets.status, 0);
	t.match(nets.stderr, /not a manager/, nets.stderr);
	t.notOk(b.loaded(MANAGER), "and the manager stays unloaded");
	const { MANAGER_PROTOCOL } = await import("../../agent/manager/index.ts");
	t.match(readFileSync(join(repo, "agent", "agent.ts"), "utf8"), `const MANAGER_PROTOCOL = "${MANAGER_PROTOCOL}";`);
});
