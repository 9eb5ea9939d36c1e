// Upgrade from the version before the join keys moved into the store (commit d22a743): there the
// init node kept cluster.key and the secrets in state.json, and a manager that joined had no
// cluster secret. After both restart on this version the init node seals its material into the
// store and drops the files, the other manager fetches the cluster secret, and the tokens issued
// before the upgrade work through either manager.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { cliPath as cli, type LabAgent, startAgent } from "../helpers/agents.ts";
import { tempDir, waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";

const PREVIOUS = "d22a743";
const ROOT = join(import.meta.dirname, "..", "..");
const TOKEN = /TSWARM-1-[a-z2-7]{25}-[a-z2-7]{32}/;

t.test("a cluster made before the join keys were in the store keeps its tokens and admits anywhere", async (t) => {
	// The previous version's tree, run with this checkout's node_modules (the same dependencies).
	const old = tempDir("tsswarm-joinkeys-old-");
	t.teardown(old.remove);
	const archive = spawnSync("sh", ["-c", `git -C "${ROOT}" archive ${PREVIOUS} | tar -x -C "${old.path}"`], {
		encoding: "utf8",
	});
	t.equal(archive.status, 0, `the previous version (${PREVIOUS}) is in the repository's history: ${archive.stderr}`);
	if (archive.status !== 0) return;
	symlinkSync(join(ROOT, "node_modules"), join(old.path, "node_modules"));
	const oldCli = join(old.path, "cli", "tsswarm");

	const lab = await withLab(t, { nodes: 3 });
	const node = (name: string) => lab.nodes.find((n) => n.name === name)!;
	const at = (name: string) => `${node(name).address}:2377`;
	const file = (name: string, f: string) => join(node(name).dir, "cluster", f);
	const agents = new Map<string, LabAgent>();
	const start = async (name: string, o: { cli?: string } = {}) => {
		const a = await startAgent(lab, name, o);
		agents.set(name, a);
		t.teardown(() => a.stop("SIGKILL"));
	};
	await start("n1", { cli: oldCli });
	await start("n2", { cli: oldCli });
	await start("n3");

	const init = await lab.exec("n1", [oldCli, "init"]);
	t.equal(init.code, 0, init.stderr);
	const worker = TOKEN.exec(init.stdout)?.[0] ?? "";
	const manager = TOKEN.exec((await lab.exec("n1", [oldCli, "join-token", "manager"])).stdout)?.[0] ?? "";
	t.ok(worker && manager, "the old init node prints both tokens");
	const j2 = await lab.exec("n2", [oldCli, "join", "--token", manager, at("n1")]);
	t.equal(j2.code, 0, `n2 joins as a manager on the old version (${j2.stderr.trim()})`);
	t.ok(existsSync(file("n1", "cluster.key")), "the old layout: cluster.key on the init node");
	t.ok(JSON.parse(readFileSync(file("n1", "state.json"), "utf8")).secrets, "and the secrets in its state file");
	t.notOk(existsSync(file("n2", "keys")), "and no cluster secret on the manager that joined");
	const old2 = await lab.exec("n2", [oldCli, "join-token", "worker"]);
	t.equal(old2.code, 1, "the old version prints tokens only on the init node");

	// The upgrade: both managers restart on this version.
	for (const n of ["n1", "n2"]) await agents.get(n)!.stop("SIGTERM");
	await start("n1");
	await start("n2");
	await waitFor("n1 to move its join keys into the store", () => !existsSync(file("n1", "cluster.key")), {
		timeoutMs: 60_000,
	});
	t.notOk(JSON.parse(readFileSync(file("n1", "state.json"), "utf8")).secrets, "the state file holds no secrets");
	await waitFor("n2 to fetch the cluster secret", () => existsSync(file("n2", "keys")), { timeoutMs: 60_000 });
	const printed = await waitFor(
		"n2 to print the worker token",
		async () => TOKEN.exec((await lab.exec("n2", [cli, "join-token", "worker"])).stdout)?.[0],
		{ timeoutMs: 30_000 },
	);
	t.equal(printed, worker, "the upgraded second manager prints the token issued before the upgrade");
	const j3 = await waitFor(
		"n3 to join through n2",
		async () => {
			const r = await lab.exec("n3", [cli, "join", "--token", worker, at("n2")]);
			if (r.code !== 0) throw new Error(r.stderr.trim());
			return r;
		},
		{ timeoutMs: 60_000, intervalMs: 3000 },
	);
	t.match(j3.stdout, /as a worker/, "a node joins through the manager that joined before the upgrade");
});
