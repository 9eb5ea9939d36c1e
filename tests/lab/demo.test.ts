// The main job, end to end: `tsswarm lab demo` under a unique lab name, and nothing left after it.
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import { uniqueName } from "../helpers/index.ts";

const cli = new URL("../../cli/tsswarm", import.meta.url).pathname;

t.test("lab demo: cluster, registry, multi-arch containers, overlay with DNS, VIP and mesh; then gone", async (t) => {
	const name = uniqueName("dm");
	t.teardown(() => run([cli, "lab", "down", "--name", name], { allowFailure: true }));
	const r = await run([cli, "lab", "demo", "--name", name], { allowFailure: true });
	t.equal(r.code, 0, r.stderr);
	t.match(r.stdout, /uname -m = aarch64/, "an arm64 container ran through qemu");
	t.match(r.stdout, /converged in \d+ ms after the last join/, "the agents formed a cluster");
	t.match(r.stdout, / Leader /, "node ls shows the Raft leader");
	t.equal(r.stdout.match(/ Reachable /g)?.length, 2, "and two more managers");
	t.match(r.stdout, /app\s+overlay\s+swarm\s+198\.19\.1\.0\/24/, "the network created on n3 is listed on n1");
	t.match(r.stdout, /ingress\s+overlay\s+swarm\s+198\.19\.0\.0\/24/, "with the default ingress network");
	t.match(r.stdout, /overlay network app \(VNI 4097, 198\.19\.1\.0\/24\)/, "the data plane uses the stored allocation");
	const vip = /wget http:\/\/web\/ x4 -> (.*) {3}\(DNS/.exec(r.stdout)?.[1]?.split(", ") ?? [];
	t.equal(vip.length, 4, "four answers through the VIP");
	t.equal(new Set(vip).size, 2, "from both replicas");
	t.notOk(vip.includes("failed"));
	t.match(r.stdout, /routing mesh: .* -> hello from \w+/, "the mesh answered on a node without the task");
	t.match(r.stdout, /nothing left behind/);
	t.notMatch(
		(await run(["ip", "netns", "list"])).stdout,
		new RegExp(`tsl-${name}-`),
		"no namespace of the demo's lab remains",
	);
});
