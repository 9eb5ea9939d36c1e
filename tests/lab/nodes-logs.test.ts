// Nodes and service logs on a real 3-node cluster lab: node inspect/ps/update (drain moves tasks,
// `active` does not bring them back, a label placed by update steers a constraint), and
// `service logs` from every node: prefixes, --raw, -t, -f, and a killed node's tasks named
// unreachable while the others' lines still come (moby#33183).
import { spawn } from "node:child_process";
import t from "tap";
import { cliPath, labNodeEnv, netnsArgv } from "../../cli/lab/index.ts";
import { waitFor } from "../helpers/index.ts";
import { type Lab, withLab } from "../helpers/lab.ts";

interface TaskRow {
	id: string;
	name: string;
	node: string;
	desiredState: string;
	state: string;
}

const IMAGE = "198.18.0.254:5000/busybox:latest";
const PREFIX = /^(s\.\d)\.([a-z0-9]{12})@(n[123]) {4}\| tick (\d+)$/;

async function ok(lab: Lab, on: string, args: string[]): Promise<string> {
	const r = await lab.tsswarm(on, args);
	if (r.code !== 0) throw new Error(`tsswarm ${args.join(" ")} on ${on}: exit ${r.code}: ${r.stderr.trim()}`);
	return r.stdout;
}

const ps = async (lab: Lab, svc: string) =>
	JSON.parse(await ok(lab, "n1", ["service", "ps", svc, "--format", "json"])) as TaskRow[];
const running = (rows: TaskRow[]) => rows.filter((r) => r.desiredState === "running" && r.state === "running");

t.test("nodes and service logs on a 3-node cluster", async (t) => {
	const t0 = Date.now();
	const lab = await withLab(t, { nodes: 3, cluster: true, registry: true });
	t.comment(`lab up: ${Date.now() - t0} ms`);
	await waitFor(
		"n1 to list 3 ready nodes",
		async () => {
			const v = JSON.parse(await ok(lab, "n1", ["node", "ls", "--format", "json"])) as Array<{ state: string }>;
			return v.filter((n) => n.state === "alive").length === 3;
		},
		{ timeoutMs: 60_000, intervalMs: 500 },
	);

	// node ls / inspect from the store: hostnames, availability, engine version, manager status.
	const table = await ok(lab, "n1", ["node", "ls"]);
	t.match(
		table.split("\n")[0],
		/ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS\s+ENGINE VERSION\s+PLATFORM/,
		"node ls columns",
	);
	t.match(table, /\bn2\s+Ready\s+Active\b/, "node ls shows n2's hostname and availability");
	const all = JSON.parse(await ok(lab, "n1", ["node", "inspect", "n1", "n2", "n3"])) as Array<{
		id: string;
		hostname: string;
		availability: string;
		engineVersion: string;
		status?: { state: string };
		managerStatus?: { leader: boolean; reachability: string };
	}>;
	t.same(
		all.map((n) => n.hostname),
		["n1", "n2", "n3"],
		"node inspect takes hostnames and prints a JSON array in order",
	);
	t.ok(
		all.every((n) => n.availability === "active" && n.engineVersion && n.status?.state === "ready"),
		"each record with availability, engine version and status",
	);
	t.equal(all.filter((n) => n.managerStatus?.leader).length, 1, "exactly one of them is the leader");
	const n3 = all[2]!;
	const byPrefix = JSON.parse(await ok(lab, "n2", ["node", "inspect", n3.id.slice(0, 14)])) as Array<{ id: string }>;
	t.equal(byPrefix[0]?.id, n3.id, "a unique id prefix names the node (asked on another manager)");
	const self = JSON.parse(await ok(lab, "n3", ["node", "inspect"])) as Array<{ id: string }>;
	t.equal(self[0]?.id, n3.id, "no argument: this node");
	const unknown = await lab.tsswarm("n1", ["node", "inspect", "n9"]);
	t.equal(unknown.code, 1, "an unknown node fails");
	t.match(unknown.stderr, /node n9 not found/, "and says which");

	// A 3-replica service that prints a numbered line every 200 ms.
	const script = 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done';
	await ok(lab, "n1", ["service", "create", "--name", "s", "--replicas", "3", IMAGE, "--", "sh", "-c", script]);
	const tasks = running(await ps(lab, "s"));
	t.same(tasks.map((r) => r.node).sort(), ["n1", "n2", "n3"], "one replica per node");

	// node ps: the node's tasks, default this node.
	const onN2 = JSON.parse(await ok(lab, "n1", ["node", "ps", "n2", "--format", "json"])) as TaskRow[];
	t.same(
		onN2.map((r) => r.id),
		tasks.filter((r) => r.node === "n2").map((r) => r.id),
		"node ps n2 lists n2's task",
	);
	const here = JSON.parse(await ok(lab, "n3", ["node", "ps", "--format", "json"])) as TaskRow[];
	t.same(
		here.map((r) => r.node),
		["n3"],
		"node ps with no argument: this node's tasks",
	);
	t.match(
		await ok(lab, "n1", ["node", "ps", "n2"]),
		/ID\s+NAME\s+IMAGE\s+NODE\s+PLATFORM\s+DESIRED STATE/,
		"node ps: service ps's columns",
	);

	// service logs: lines of all three tasks, each with NAME.SLOT.TASKID@NODE.
	const logs = await waitFor(
		"logs with lines from all three nodes",
		async () => {
			const out = (await ok(lab, "n2", ["service", "logs", "--tail", "3", "s"])).trim().split("\n");
			const nodes = new Set(out.map((l) => PREFIX.exec(l)?.[3]));
			return nodes.has("n1") && nodes.has("n2") && nodes.has("n3") ? out : undefined;
		},
		{ timeoutMs: 20_000, intervalMs: 500 },
	);
	t.equal(logs.length, 9, "--tail 3 of each of the 3 tasks");
	t.ok(
		logs.every((l) => PREFIX.test(l)),
		"every line has the docker prefix",
	);
	for (const task of tasks) {
		const mine = logs.filter((l) => PREFIX.exec(l)?.[2] === task.id.slice(0, 12));
		t.ok(
			mine.length === 3 && mine.every((l) => l.includes(`@${task.node}    |`)),
			`${task.name}'s lines name its task id and node ${task.node}`,
		);
	}
	const raw = (await ok(lab, "n1", ["service", "logs", "--raw", "--tail", "1", "s"])).trim().split("\n");
	t.ok(raw.length === 3 && raw.every((l) => /^tick \d+$/.test(l)), "--raw: the lines alone");
	const stamped = (await ok(lab, "n1", ["service", "logs", "-t", "--tail", "1", "s"])).trim().split("\n");
	t.ok(
		stamped.every((l) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z s\.\d\.[a-z0-9]{12}@n[123] {4}\| tick/.test(l)),
		"-t: the time first",
	);
	const one = (await ok(lab, "n1", ["service", "logs", "--tail", "2", tasks[0]!.id])).trim().split("\n");
	t.ok(
		one.length === 2 && one.every((l) => l.includes(tasks[0]!.id.slice(0, 12))),
		"a task id: that task's lines only",
	);
	const badTail = await lab.tsswarm("n1", ["service", "logs", "--since", "yesterday", "s"]);
	t.equal(badTail.code, 1, "a bad --since is refused");
	t.match(badTail.stderr, /--since "yesterday"/);

	// -f: new lines stream, from every node, until the client goes.
	{
		const [cmd, ...args] = netnsArgv(lab.record, "n1", [cliPath, "service", "logs", "-f", "--tail", "0", "s"]);
		const child = spawn(cmd!, args, { env: labNodeEnv(lab.record, lab.nodes[0]!), stdio: ["ignore", "pipe", "pipe"] });
		t.teardown(() => child.kill("SIGKILL"));
		let out = "";
		child.stdout.setEncoding("utf8").on("data", (d: string) => {
			out += d;
		});
		const firstSeen = new Map<string, number>();
		const streamed = await waitFor(
			"followed lines from all three nodes, twice each",
			() => {
				const count = new Map<string, number>();
				for (const l of out.split("\n")) {
					const m = PREFIX.exec(l);
					if (!m) continue;
					count.set(m[3]!, (count.get(m[3]!) ?? 0) + 1);
					if (!firstSeen.has(m[3]!)) firstSeen.set(m[3]!, Number(m[4]));
				}
				return ["n1", "n2", "n3"].every((n) => (count.get(n) ?? 0) >= 2) ? count : undefined;
			},
			{ timeoutMs: 20_000, intervalMs: 200 },
		);
		t.equal(streamed.size, 3, "-f streams new lines of all three tasks");
		const exited = new Promise<number | null>((r) => child.once("close", (c) => r(c)));
		child.kill("SIGINT");
		t.equal(await exited, 0, "and ends cleanly on SIGINT");
	}

	// drain moves n2's task away; active does not bring it back.
	const n2Task = tasks.find((r) => r.node === "n2")!;
	await ok(lab, "n1", ["node", "update", "--availability", "drain", "n2"]);
	const drained = await waitFor(
		"3 running replicas, none on n2",
		async () => {
			const r = running(await ps(lab, "s"));
			return r.length === 3 && r.every((x) => x.node !== "n2") ? r : undefined;
		},
		{ timeoutMs: 60_000, intervalMs: 500 },
	);
	t.pass(`drain moved ${n2Task.name} off n2 (now ${drained.map((r) => r.node).join(", ")})`);
	t.equal(
		(JSON.parse(await ok(lab, "n1", ["node", "inspect", "n2"])) as Array<{ availability: string }>)[0]?.availability,
		"drain",
		"node inspect shows the drain",
	);
	await ok(lab, "n1", ["node", "update", "--availability", "active", "n2"]);
	const ids = drained.map((r) => r.id).sort();
	// Watch a window of several orchestrator/scheduler passes (they run on every change and each 1-2 s).
	const until = Date.now() + 6000;
	while (Date.now() < until) {
		const r = running(await ps(lab, "s"));
		t.same(r.map((x) => x.id).sort(), ids, "active again: the same tasks keep running where they are");
		if (r.some((x) => x.node === "n2")) break;
		await new Promise((res) => setTimeout(res, 1000));
	}
	// Positive control: n2 takes new tasks again, so nothing held the tasks off it but the rule.
	await ok(lab, "n1", ["service", "scale", "s=4"]);
	const scaled = running(await ps(lab, "s"));
	t.equal(scaled.filter((r) => r.node === "n2").length, 1, "control: after active, n2 gets the 4th replica");
	t.same(
		scaled
			.filter((r) => r.node !== "n2")
			.map((r) => r.id)
			.sort(),
		ids,
		"and the others stayed",
	);

	// --label-add steers a constraint; --label-rm takes the label away.
	await ok(lab, "n1", ["node", "update", "--label-add", "zone=blue", "n3"]);
	await ok(lab, "n1", [
		"service",
		"create",
		"--name",
		"c",
		"--replicas",
		"2",
		"--constraint",
		"node.labels.zone==blue",
		IMAGE,
		"--",
		"sleep",
		"3600",
	]);
	t.same(
		running(await ps(lab, "c")).map((r) => r.node),
		["n3", "n3"],
		"both tasks of the constrained service run on the labelled node",
	);
	await ok(lab, "n1", ["node", "update", "--label-rm", "zone", "n3"]);
	const n3Labels = (JSON.parse(await ok(lab, "n1", ["node", "inspect", "n3"])) as Array<{ labels: object }>)[0]?.labels;
	t.same(n3Labels, {}, "--label-rm removes it");
	const badAvail = await lab.tsswarm("n1", ["node", "update", "--availability", "away", "n3"]);
	t.equal(badAvail.code, 2, "an unknown availability is a usage error");

	// Kill n3's agent: logs still returns n1's and n2's lines and names n3's tasks as unreachable.
	const before = running(await ps(lab, "s"));
	const onN3 = before.filter((r) => r.node === "n3");
	t.ok(onN3.length >= 1, "control: a task of s runs on n3 before the kill");
	const control = await ok(lab, "n1", ["service", "logs", "--tail", "1", "s"]);
	t.ok(
		onN3.every((r) => control.includes(`${r.id.slice(0, 12)}@n3`)),
		"control: before the kill, n3's tasks' lines are there",
	);
	await lab.stop("n3", { kill: true });
	const t1 = Date.now();
	const after = await lab.tsswarm("n1", ["service", "logs", "--tail", "1", "s"]);
	const took = Date.now() - t1;
	t.comment(`service logs with n3 killed: ${took} ms`);
	t.ok(took < 20_000, "it returns (bounded time), it does not hang");
	t.equal(after.code, 1, "exit 1: some tasks' logs could not be read");
	const got = new Set(
		after.stdout
			.trim()
			.split("\n")
			.map((l) => PREFIX.exec(l)?.[3]),
	);
	t.ok(got.has("n1") && got.has("n2"), "n1's and n2's lines are there");
	t.notOk(got.has("n3"), "no line from n3");
	for (const r of onN3)
		t.match(after.stderr, new RegExp(`${r.id.slice(0, 12)}@n3: .*unreachable`), `${r.name} on n3 is named unreachable`);
	t.comment(`whole test: ${Date.now() - t0} ms`);
});
