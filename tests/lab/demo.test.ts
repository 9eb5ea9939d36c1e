// The main job, end to end: `tsswarm lab demo` under a unique lab name, and nothing left after it.
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import { uniqueName } from "../helpers/index.ts";

const cli = new URL("../../cli/tsswarm", import.meta.url).pathname;

t.test("lab demo: a 3-node cluster with an arm64 node runs a published web service; a node dies; gone", async (t) => {
	const name = uniqueName("dm");
	t.teardown(() => run([cli, "lab", "down", "--name", name], { allowFailure: true }));
	const r = await run([cli, "lab", "demo", "--name", name], { allowFailure: true });
	t.equal(r.code, 0, r.stderr);
	t.match(r.stdout, /linux\/arm64/, "node ls shows the arm64 node");
	t.match(r.stdout, / Leader /, "and the Raft leader");
	t.match(r.stdout, /overall progress: 3 out of 3 tasks/, "create shows docker's progress");
	t.match(r.stdout, /verify: Service converged/);
	const ps = r.stdout.slice(r.stdout.indexOf("tsswarm service ps web"));
	for (const p of ["linux/amd64", "linux/arm64"]) t.match(ps, new RegExp(`web\\.\\d .*${p}`), `a replica runs on ${p}`);
	const mesh = [...r.stdout.matchAll(/curl (http:\/\/198\.18\.0\.\d+:8080\/) +-> hello from (\S+)/g)];
	t.equal(new Set(mesh.map((m) => m[1])).size, 3, "port 8080 answered on all three nodes");
	t.match(
		r.stdout,
		/web\.\d runs on n\d \(linux\/\S+\) \d+ ms after the kill/,
		"the killed node's replica runs elsewhere",
	);
	t.match(r.stdout, /nothing left behind/);
	t.notMatch(
		(await run(["ip", "netns", "list"])).stdout,
		new RegExp(`tsl-${name}-`),
		"no namespace of the demo's lab remains",
	);
});
