// Placement on a real 4-node cluster lab whose n2 is a real linux/arm64 agent (qemu-user): an
// arm64-only image lands only there (platforms taken from the image index at create), and stays
// pending with the reason when that node is excluded; a global service reaches a node that joins later.
import t from "tap";
import { waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import {
	BUSYBOX,
	cli,
	liveRunning,
	nodeLs,
	runningEverywhere,
	serviceLs,
	servicePs,
	waitPs,
} from "../helpers/services.ts";

const ARM64_ONLY = "198.18.0.254:5000/busybox-arm64:latest";

const t0 = Date.now();
const lab = await withLab(t, {
	nodes: 4,
	cluster: true,
	registry: true,
	platforms: ["linux/amd64", "linux/arm64", "linux/amd64", "linux/amd64"],
});
t.comment(`lab up --cluster --registry (n2 arm64, n4 a worker): ${Date.now() - t0} ms`);

t.test("an arm64-only image runs only on the arm64 node", async (t) => {
	const since = Date.now();
	await cli(lab, "n1", [
		"service",
		"create",
		"--quiet",
		"--name",
		"armonly",
		"--replicas",
		"2",
		"--stop-grace-period",
		"1s",
		ARM64_ONLY,
		"sleep",
		"3600",
	]);
	t.comment(`2 replicas of the arm64-only image running (under qemu) after ${Date.now() - since} ms`);
	const [svc] = JSON.parse(await cli(lab, "n3", ["service", "inspect", "armonly"])) as Array<{
		value: { spec: { task: { placement: { platforms: Array<{ os: string; architecture: string }> } } } };
	}>;
	t.same(
		svc?.value.spec.task.placement.platforms.map((p) => `${p.os}/${p.architecture}`),
		["linux/arm64"],
		"create recorded the image index's only platform",
	);
	const rows = liveRunning(await servicePs(lab, "n1", "armonly"));
	t.same(
		rows.map((r) => `${r.node} ${r.platform.replace(/\/v8$/, "")}`),
		["n2 linux/arm64", "n2 linux/arm64"],
		"both replicas on n2, the arm64 node",
	);
	const where = await runningEverywhere(lab, "armonly");
	t.same(
		[...where].map(([n, l]) => `${n}:${l.length}`),
		["n1:0", "n2:2", "n3:0", "n4:0"],
		"the containers run on n2 and nowhere else",
	);
	await cli(lab, "n1", ["service", "rm", "armonly"]);
});

t.test("an arm64-only image with its node excluded stays pending and says why", async (t) => {
	// (Draining n2 is the node engineer's; a constraint that excludes it leaves no node either.)
	await cli(lab, "n1", [
		"service",
		"create",
		"--detach",
		"--name",
		"armnowhere",
		"--constraint",
		"node.hostname!=n2",
		ARM64_ONLY,
		"sleep",
		"3600",
	]);
	const rows = await waitPs(lab, "n2", "armnowhere", "a pending task with a reason", (rs) =>
		rs.some((r) => r.state === "pending" && r.error !== ""),
	);
	t.match(
		rows[0]?.error,
		/^no suitable node \(3 nodes lack platform linux\/arm64; scheduling constraints not satisfied on 1 node\)$/,
		"the reason names the platform",
	);
	t.comment(`pending reason: ${rows[0]?.error}`);
	t.equal((await serviceLs(lab, "n1")).find((s) => s.name === "armnowhere")?.running, 0, "service ls: 0/1");
	await cli(lab, "n1", ["service", "rm", "armnowhere"]);
	// Fallback spelled out: a multi-arch image constrained to arm64 also lands on n2 only.
	await cli(lab, "n1", [
		"service",
		"create",
		"--quiet",
		"--name",
		"armc",
		"--replicas",
		"2",
		"--stop-grace-period",
		"1s",
		"--constraint",
		"node.platform.arch==arm64",
		BUSYBOX,
		"sleep",
		"3600",
	]);
	t.same(
		liveRunning(await servicePs(lab, "n1", "armc")).map((r) => r.node),
		["n2", "n2"],
		"--constraint node.platform.arch==arm64: both on n2",
	);
	await cli(lab, "n1", ["service", "rm", "armc"]);
});

t.test("a global service lands on a node that joins later", async (t) => {
	// n4 (a worker) leaves, and is removed: the cluster has 3 nodes when the service is made.
	const n4Id = (
		JSON.parse(await cli(lab, "n1", ["node", "ls", "--format", "json"])) as Array<{ id: string; addr: string }>
	).find((n) => n.addr.startsWith("198.18.0.4:"))!.id;
	await cli(lab, "n4", ["leave"]);
	await waitFor(
		"n4 not alive on n1",
		async () =>
			(
				JSON.parse(await cli(lab, "n1", ["node", "ls", "--format", "json"])) as Array<{ id: string; state: string }>
			).find((n) => n.id === n4Id)?.state !== "alive",
		{ timeoutMs: 30_000, intervalMs: 300 },
	);
	await cli(lab, "n1", ["node", "rm", n4Id]);
	await cli(lab, "n1", [
		"service",
		"create",
		"--quiet",
		"--name",
		"everywhere",
		"--mode",
		"global",
		"--stop-grace-period",
		"1s",
		BUSYBOX,
		"sleep",
		"3600",
	]);
	const three = liveRunning(await servicePs(lab, "n1", "everywhere"));
	t.same(three.map((r) => r.node).sort(), ["n1", "n2", "n3"], "one task on each of the 3 nodes");

	const token = /TSWARM-1-\S+/.exec(await cli(lab, "n1", ["join-token", "worker"]))?.[0];
	t.ok(token, "a worker join token");
	const since = Date.now();
	await cli(lab, "n4", ["join", "--token", token!, "198.18.0.1:2377"]);
	const four = await waitPs(lab, "n1", "everywhere", "a task running on n4", (rs) =>
		liveRunning(rs).some((r) => r.node === "n4"),
	);
	t.comment(`global task running on the newly joined n4 ${Date.now() - since} ms after join`);
	t.same(
		liveRunning(four)
			.map((r) => r.node)
			.sort(),
		["n1", "n2", "n3", "n4"],
		"now one task on each of 4 nodes",
	);
	t.equal((await runningEverywhere(lab, "everywhere")).get("n4")?.length, 1, "its container runs on n4");
	const ls = (await serviceLs(lab, "n1")).find((s) => s.name === "everywhere");
	if (!t.same(ls && [ls.running, ls.desired], [4, 4], "service ls: 4/4"))
		t.comment(JSON.stringify({ ps: await servicePs(lab, "n1", "everywhere"), nodes: await nodeLs(lab, "n1") }));
	await cli(lab, "n1", ["service", "rm", "everywhere"]);
});
