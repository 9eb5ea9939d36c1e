// The Raft-backed store through the product: a 3-manager cluster in a lab, `tsswarm network ...`
// on any manager (writes forwarded to the leader), refused on a worker, surviving a leader kill
// and an agent restart.
import t from "tap";
import type { NetworkInspect } from "../../../agent/api/index.ts";
import { type LabAgent, startAgent, tsswarm } from "../../helpers/agents.ts";
import { waitFor } from "../../helpers/index.ts";
import { withLab } from "../../helpers/lab.ts";

t.test("networks in the replicated store: create on any manager, refusals, leader failover, restart", async (t) => {
	const lab = await withLab(t, { nodes: 4 });
	const agents: Record<string, LabAgent> = {};
	for (const n of lab.nodes) agents[n.name] = await startAgent(lab, n.name);
	const run = async (node: string, ...args: string[]) => tsswarm(lab, node, args);
	const ok = async (node: string, ...args: string[]) => {
		const r = await run(node, ...args);
		t.equal(r.code, 0, `${node}: tsswarm ${args.join(" ")} ${r.stderr.trim()}`);
		return r.stdout;
	};
	const ls = async (node: string) =>
		JSON.parse(await ok(node, "network", "ls", "--format", "json")) as NetworkInspect[];

	// Bad pools are usage errors, and leave the node out of any cluster.
	const badPool = await run("n1", "init", "--default-addr-pool", "198.19.0.0/33");
	t.equal(badPool.code, 2, "a bad --default-addr-pool is a usage error");
	t.match(badPool.stderr, /^tsswarm: invalid address pool "198\.19\.0\.0\/33"/);

	const early = await run("n2", "network", "ls");
	t.equal(early.code, 1, "network ls outside a cluster fails");
	t.match(early.stderr, /this node is not in a cluster/);

	const init = await ok("n1", "init", "--default-addr-pool", "198.19.0.0/16");
	t.match(init, /is now a manager/);
	const mtok = (await ok("n1", "join-token", "manager")).match(/TSWARM-1-\S+/)?.[0];
	const wtok = (await ok("n1", "join-token", "worker")).match(/TSWARM-1-\S+/)?.[0];
	t.ok(mtok && wtok, "tokens printed");
	await ok("n2", "join", "--token", mtok!, "198.18.0.1:2377");
	await ok("n3", "join", "--token", mtok!, "198.18.0.1:2377");
	await ok("n4", "join", "--token", wtok!, "198.18.0.1:2377");

	// The default ingress network exists from init, from the pool given there.
	const first = await ls("n1");
	t.same(
		first.map((n) => [n.Name, n.Ingress, n.IPAM.Config[0]?.Subnet]),
		[["ingress", true, "198.19.0.0/24"]],
	);

	// Both joined managers become voters: each one's store shows ingress once it has caught up.
	for (const m of ["n2", "n3"])
		await waitFor(`${m} replicates the store`, async () => (await ls(m)).some((n) => n.Name === "ingress"), {
			timeoutMs: 30_000,
			intervalMs: 300,
		});
	await waitFor(
		"three managers in node ls",
		async () => {
			const nodes = JSON.parse(await ok("n1", "node", "ls", "--format", "json")) as Array<{ managerStatus: string }>;
			const st = nodes.map((n) => n.managerStatus).sort();
			return JSON.stringify(st) === JSON.stringify(["", "Leader", "Reachable", "Reachable"]);
		},
		{ timeoutMs: 30_000, intervalMs: 300 },
	);

	// Created on a follower: forwarded to the leader, allocated from the pool, seen everywhere.
	const id = (await ok("n2", "network", "create", "-d", "overlay", "app")).trim();
	t.match(id, /^[0-9a-f]{25}$/, "create prints the new network's id");
	t.ok(
		(await ls("n2")).some((n) => n.Id === id),
		"read-your-writes: the follower that forwarded the create lists it at once",
	);
	const custom = (await ok("n3", "network", "create", "--subnet", "198.19.200.0/24", "--internal", "db")).trim();
	for (const m of ["n1", "n2", "n3"])
		await waitFor(`${m} sees app and db`, async () => (await ls(m)).length === 3, { timeoutMs: 10_000 });
	const all = await ls("n1");
	const app = all.find((n) => n.Name === "app")!;
	t.equal(app.Id, id);
	t.equal(app.IPAM.Config[0]?.Subnet, "198.19.1.0/24", "next free /24 of the pool");
	t.equal(app.IPAM.Config[0]?.Gateway, "198.19.1.1");
	const db = all.find((n) => n.Name === "db")!;
	t.equal(db.Id, custom);
	t.ok(db.Internal);
	const vnis = all.map((n) => n.Options["com.docker.network.driver.overlay.vxlanid_list"]);
	t.equal(new Set(vnis).size, 3, `distinct VNIs ${vnis.join(",")}`);
	const insp = JSON.parse(await ok("n2", "network", "inspect", "app")) as NetworkInspect[];
	t.equal(insp[0]?.Id, id, "inspect by name");
	t.equal(
		(JSON.parse(await ok("n3", "network", "inspect", id.slice(0, 6))) as NetworkInspect[])[0]?.Name,
		"app",
		"by id prefix",
	);

	// Refusals: each a clear error, nothing stored changes.
	const refusals: Array<[string[], RegExp]> = [
		[["network", "create", "app"], /network app already exists/],
		[["network", "create", "--subnet", "198.19.1.128/25", "other"], /overlaps/],
		[["network", "create", "--subnet", "300.1.0.0/24", "bad"], /invalid subnet "300\.1\.0\.0"/],
		[["network", "create", "-o", "encrypted", "secret"], /not supported|not available/],
		[["network", "create", "-d", "bridge", "br"], /driver "bridge" is not supported/],
		[["network", "create", "bad name"], /name "bad name" must be/],
		[["network", "create", "--ingress", "ingress2"], /an ingress network already exists/],
		[["network", "rm", "nosuch"], /network nosuch not found/],
	];
	for (const [args, why] of refusals) {
		const r = await run("n2", ...args);
		t.equal(r.code, 1, `refused: ${args.join(" ")}`);
		t.match(r.stderr, why, `${args.join(" ")}: ${r.stderr.trim()}`);
		t.equal(r.stderr.trim().split("\n").length, 1, "one line");
	}
	t.equal((await ls("n1")).length, 3, "nothing stored changed");

	// A worker has no store: network commands say to use a manager.
	const w = await run("n4", "network", "ls");
	t.equal(w.code, 1);
	t.match(w.stderr, /this node is not a manager/);

	// SIGKILL the leader: the two other managers elect one and keep taking writes.
	await agents.n1!.stop("SIGKILL");
	const created = await waitFor(
		"a write after the leader died",
		async () => {
			const r = await run("n3", "network", "create", "after");
			return r.code === 0 ? r.stdout.trim() : undefined;
		},
		{ timeoutMs: 30_000, intervalMs: 500 },
	);
	t.match(created, /^[0-9a-f]{25}$/);
	await ok("n2", "network", "rm", "db");
	t.same(
		(await ls("n2")).map((n) => n.Name).sort(),
		["after", "app", "ingress"],
		"the new leader's writes are in the store",
	);

	// The old leader restarts from its data dir and catches up with what it missed.
	agents.n1 = await startAgent(lab, "n1");
	await waitFor(
		"n1 catches up after restart",
		async () =>
			(await ls("n1"))
				.map((n) => n.Name)
				.sort()
				.join(",") === "after,app,ingress",
		{ timeoutMs: 30_000, intervalMs: 300 },
	);
	for (const a of Object.values(agents)) await a.stop();
});
