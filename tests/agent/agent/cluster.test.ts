import t from "tap";
import { cliPath as cli, type LabAgent, startAgent } from "../../helpers/agents.ts";
import { waitFor } from "../../helpers/index.ts";
import { withLab } from "../../helpers/lab.ts";

const TOKEN = /TSWARM-1-[a-z2-7]{25}-[a-z2-7]{32}/;

t.test("agents in a 4-node lab: init, worker/manager/rotated tokens, labels, leave, failure", async (t) => {
	const lab = await withLab(t, { nodes: 4 });
	// One agent per node, in the node's namespace (the lab's teardown ends them too).
	const agents = new Map<string, LabAgent>();
	for (const n of lab.nodes) {
		const extra = n.name === "n2" ? ["--label", "zone=b", "--label", "disk=ssd"] : [];
		// n1 listens on 0.0.0.0 with the default port: it must advertise its one real address.
		const listen = n.name === "n1" ? [] : ["--listen-addr", `${n.address}:2377`];
		const a = await startAgent(lab, n.name, { args: [...listen, ...extra] });
		agents.set(n.name, a);
		t.teardown(() => a.stop("SIGKILL"));
	}
	const init = await lab.exec("n1", [cli, "init"]);
	t.equal(init.code, 0, init.stderr);
	const worker = TOKEN.exec(init.stdout)?.[0];
	t.ok(worker, "init printed a worker token");
	t.match(
		init.stdout,
		/tsswarm join --token TSWARM-1-\S+ 198\.18\.0\.1:2377/,
		"n1 listens on 0.0.0.0 but advertises its address",
	);

	const bad = await lab.exec("n3", [
		cli,
		"join",
		"--token",
		worker!.replace(/-[a-z2-7]{32}$/, `-${"a".repeat(32)}`),
		"198.18.0.1:2377",
	]);
	t.equal(bad.code, 1, "a wrong secret fails");
	t.match(bad.stderr, /^tsswarm: join refused by the cluster: join proof from \S+ matches no current token/);

	const j2 = await lab.exec("n2", [cli, "join", "--token", worker!, "198.18.0.1:2377"]);
	t.equal(j2.code, 0, `n2 joins with the worker token (${j2.stderr.trim()})`);

	const mt = await lab.exec("n1", [cli, "join-token", "manager"]);
	const manager = TOKEN.exec(mt.stdout)?.[0];
	t.ok(manager && manager !== worker, "a distinct manager token");
	const j3 = await lab.exec("n3", [cli, "join", "--token", manager!, "198.18.0.1:2377"]);
	t.equal(j3.code, 0, `n3 joins with the manager token (${j3.stderr.trim()})`);
	t.match(j3.stdout, /as a manager/);

	const rot = await lab.exec("n1", [cli, "join-token", "worker", "--rotate"]);
	const rotated = TOKEN.exec(rot.stdout)?.[0];
	t.ok(rotated && rotated !== worker, "rotation prints a new worker token");
	const stale = await lab.exec("n4", [cli, "join", "--token", worker!, "198.18.0.1:2377"]);
	t.equal(stale.code, 1, "the rotated-out worker token is refused");
	t.match(stale.stderr, /matches no current token/);
	const j4 = await lab.exec("n4", [cli, "join", "--token", rotated!, "198.18.0.1:2377"]);
	t.equal(j4.code, 0, `n4 joins with the new token (${j4.stderr.trim()})`);

	type NodeView = { id: string; addr: string; state: string; role: string; labels: Record<string, string> };
	const nodes = async (on: string) =>
		JSON.parse((await lab.exec(on, [cli, "node", "ls", "--format", "json"])).stdout) as NodeView[];
	await waitFor(
		"all four see all four",
		async () => {
			for (const n of lab.nodes)
				if ((await nodes(n.name)).filter((x) => x.state === "alive").length !== 4) return false;
			return true;
		},
		{ timeoutMs: 20_000 },
	);
	const view = await nodes("n4");
	t.same(view.map((x) => `${x.addr}:${x.role}`).sort(), [
		"198.18.0.1:2377:manager",
		"198.18.0.2:2377:worker",
		"198.18.0.3:2377:manager",
		"198.18.0.4:2377:worker",
	]);
	t.same(view.find((x) => x.addr.startsWith("198.18.0.2:"))?.labels, { zone: "b", disk: "ssd" }, "n2's labels");

	// `tsswarm leave` is a leave: the others show n4 'left', not failed.
	const by = (on: string, ip: string) => nodes(on).then((ns) => ns.find((x) => x.addr.startsWith(`${ip}:`))?.state);
	const left = await lab.exec("n4", [cli, "leave"]);
	t.equal(left.code, 0, left.stderr);
	await waitFor(
		"n1, n2 and n3 show n4 left",
		async () => (await Promise.all(["n1", "n2", "n3"].map((n) => by(n, "198.18.0.4")))).every((s) => s === "left"),
		{ timeoutMs: 10_000, intervalMs: 200 },
	);

	// Stopping is not leaving (SIGTERM, a reboot): n2 is down, not left, and comes back as itself.
	const n2Id = (await nodes("n1")).find((x) => x.addr.startsWith("198.18.0.2:"))!.id;
	await agents.get("n2")!.stop("SIGTERM");
	await waitFor("n1 marks n2 down (not left)", async () => (await by("n1", "198.18.0.2")) === "dead", {
		timeoutMs: 20_000,
		intervalMs: 200,
	});
	const again = await startAgent(lab, "n2", { args: ["--listen-addr", "198.18.0.2:2377", "--label", "zone=b"] });
	t.teardown(() => again.stop("SIGKILL"));
	await waitFor("n2 is back, alive", async () => (await by("n1", "198.18.0.2")) === "alive", { timeoutMs: 20_000 });
	t.equal((await nodes("n1")).find((x) => x.addr.startsWith("198.18.0.2:"))?.id, n2Id, "with the same node id");

	// SIGKILL n3's agent: the others mark it down.
	const t0 = Date.now();
	agents.get("n3")!.child.kill("SIGKILL");
	await waitFor(
		"n1 and n2 mark n3 down",
		async () => (await by("n1", "198.18.0.3")) === "dead" && (await by("n2", "198.18.0.3")) === "dead",
		{ timeoutMs: 30_000, intervalMs: 200 },
	);
	// A loose bound: each probe here is two CLI processes (the real figure is the membership bench's).
	t.ok(Date.now() - t0 < 20_000, `detected in ${Date.now() - t0} ms (including CLI round trips)`);
	t.equal(await by("n1", "198.18.0.4"), "left", "n4 is still 'left', not 'dead'");
});
