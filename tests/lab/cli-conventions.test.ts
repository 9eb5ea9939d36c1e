// The CLI conventions against real agents (a manager and a worker in a 2-node lab): --host and
// TSSWARM_HOST pick the agent, --format json/templates, -q, --filter, exit 2 for mistakes, and
// `tsswarm info` with the cluster's ids, managers, leader and Raft index.
import t from "tap";
import { socketPath } from "../../agent/api/index.ts";
import { cliPath as cli, startAgent } from "../helpers/agents.ts";
import { waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";

const TOKEN = /TSWARM-1-[a-z2-7]{25}-[a-z2-7]{32}/;

interface Info {
	nodeId: string;
	clusterId: string;
	role: string;
	managers: number;
	leader: string | null;
	directory: { nodes: number };
	raft: { index: number } | null;
	tasksRunning: number | null;
}

t.test("--host, TSSWARM_HOST, --format, -q, --filter and info on a manager and a worker", async (t) => {
	const lab = await withLab(t, { nodes: 2 });
	for (const n of lab.nodes) {
		const a = await startAgent(lab, n.name);
		t.teardown(() => a.stop("SIGKILL"));
	}
	const run = (node: string, ...args: string[]) => lab.exec(node, [cli, ...args]);
	const ok = async (node: string, ...args: string[]) => {
		const r = await run(node, ...args);
		t.equal(r.code, 0, `${node}: tsswarm ${args.join(" ")} (${r.stderr.trim()})`);
		return r.stdout;
	};
	const init = await ok("n1", "init");
	await ok("n2", "join", "--token", TOKEN.exec(init)![0], "198.18.0.1:2377");
	const info1 = JSON.parse(await ok("n1", "info", "--format", "json")) as Info;
	const info2 = JSON.parse(await ok("n2", "info", "--format", "json")) as Info;
	await waitFor(
		"n1 lists both nodes alive",
		async () => (await ok("n1", "node", "ls", "--format", "{{.Status}}")).trim() === "Ready\nReady",
		{ timeoutMs: 20_000, intervalMs: 200 },
	);

	// info: the same cluster from both; the manager knows the leader and the Raft index.
	t.equal(info2.clusterId, info1.clusterId, "one cluster");
	t.not(info2.nodeId, info1.nodeId);
	t.match(info1, { role: "manager", managers: 1, leader: info1.nodeId, tasksRunning: 0 });
	t.ok((info1.raft?.index ?? 0) > 0, `a Raft index (${info1.raft?.index})`);
	t.match(info2, { role: "worker", managers: 1, raft: null, leader: null });
	const text = await ok("n1", "info");
	t.match(text, new RegExp(`ClusterID: ${info1.clusterId}`));
	t.match(text, /Is Manager: true/);
	t.match(text, /Managers: 1\n Nodes: 2\n Leader: \S+ \(this node\)\n Raft index: \d+/);
	t.equal((await ok("n1", "info", "--format", "{{.role}} {{.managers}}")).trim(), "manager 1");

	// --host and TSSWARM_HOST: n2's CLI talks to n1's agent (sockets are files, not addresses).
	const n1Sock = `unix://${socketPath(lab.nodes[0]!.dir)}`;
	const self = (node: string, ...pre: string[]) =>
		lab.exec(node, [...pre, cli, "info", "--format", "{{.nodeId}}"]).then((r) => r.stdout.trim());
	t.equal(await self("n2"), info2.nodeId, "positive control: n2's own agent by default");
	t.equal((await run("n2", "--host", n1Sock, "info", "--format", "{{.nodeId}}")).stdout.trim(), info1.nodeId, "--host");
	t.equal(await self("n2", "env", `TSSWARM_HOST=${n1Sock}`), info1.nodeId, "TSSWARM_HOST");
	const both = await lab.exec("n1", [
		"env",
		`TSSWARM_HOST=unix://${socketPath(lab.nodes[1]!.dir)}`,
		cli,
		"-H",
		n1Sock,
		"info",
		"--format",
		"{{.nodeId}}",
	]);
	t.equal(both.stdout.trim(), info1.nodeId, "--host wins over TSSWARM_HOST");
	const badHost = await run("n1", "--host", "tcp://198.18.0.1:2375", "node", "ls");
	t.equal(badHost.code, 2, "a host that is no unix socket is a usage error");
	const noAgent = await run("n1", "--host", "unix:///nonexistent/tsswarm.sock", "node", "ls");
	t.equal(noAgent.code, 1);
	t.match(noAgent.stderr, /^tsswarm: no agent is listening on unix:\/\/\/nonexistent\/tsswarm\.sock/);

	// node ls: json for scripts (the API's objects), -q, --no-trunc, --filter, templates, docker's columns.
	const nodes = JSON.parse(await ok("n1", "node", "ls", "--format", "json")) as Array<Record<string, unknown>>;
	t.same(nodes.map((n) => n.hostname).sort(), ["n1", "n2"], "hostnames from the store's records");
	t.match(
		nodes.find((n) => n.hostname === "n2"),
		{
			id: info2.nodeId,
			role: "worker",
			state: "alive",
			availability: "active",
			managerStatus: "",
			engineVersion: /^\d+\.\d+\.\d+/,
			platform: { os: "linux" },
			self: false,
		},
	);
	const table = await ok("n1", "node", "ls");
	t.match(table.split("\n")[0], /^ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS\s+ENGINE VERSION\s+PLATFORM$/);
	t.match(table, new RegExp(`${info1.nodeId.slice(0, 16)} \\*\\s+n1\\s+Ready\\s+Active\\s+Leader\\s+\\S+\\s+linux/`));
	t.equal(
		(await ok("n1", "node", "ls", "-q")).trim().split("\n").sort().join(),
		[info1.nodeId, info2.nodeId]
			.map((id) => id.slice(0, 16))
			.sort()
			.join(),
	);
	t.equal(
		(await ok("n1", "node", "ls", "-q", "--no-trunc", "--filter", "role=worker")).trim(),
		info2.nodeId,
		"--filter role=worker, --no-trunc",
	);
	t.equal((await ok("n1", "node", "ls", "-q", "--no-trunc", "-f", "name=n1")).trim(), info1.nodeId, "name=");
	t.equal((await ok("n1", "node", "ls", "-q", "-f", "role=manager", "-f", "role=worker")).trim().split("\n").length, 2);
	t.equal(
		(await ok("n1", "node", "ls", "--format", "{{.Hostname}}:{{.ManagerStatus}}", "-f", "role=manager")).trim(),
		"n1:Leader",
	);
	t.equal(
		(await ok("n2", "node", "ls", "--format", "{{.Hostname}}", "-f", "role=worker")).trim(),
		"198.18.0.2",
		"a worker keeps no records: its address stands in for the hostname",
	);
	for (const [args, why] of [
		[["--format", "yaml"], "an unknown format"],
		[["--format", "{{.Bogus}}"], "an unknown field"],
		[["--filter", "colour=red"], "an unknown filter key"],
		[["--filter", "role"], "a filter without ="],
	] as const) {
		const r = await run("n1", "node", "ls", ...args);
		t.equal(r.code, 2, `${why}: exit 2`);
		t.equal(r.stdout, "", `${why}: no table`);
		t.match(r.stderr, /^tsswarm: /);
	}

	// network ls/inspect the same way.
	t.equal(
		(await ok("n1", "network", "ls", "--format", "{{.Name}} {{.Driver}}", "-f", "name=ingr")).trim(),
		"ingress overlay",
	);
	t.equal(await ok("n1", "network", "ls", "-q", "-f", "name=nonesuch"), "", "nothing matches");
	const inspected = JSON.parse(await ok("n1", "network", "inspect", "ingress")) as Array<{
		Name: string;
		Ingress: boolean;
	}>;
	t.match(inspected, [{ Name: "ingress", Ingress: true }], "inspect prints an array");
	t.equal(
		(await ok("n1", "network", "inspect", "--format", "{{.Name}}/{{.Ingress}}", "ingress")).trim(),
		"ingress/true",
	);
	t.equal((await run("n1", "network", "ls", "--format", "{{.Nope}}")).code, 2);
});
