// Secrets and configs on a real 3-node cluster lab (all linux/amd64: this machine has no arm64
// Node binary for a qemu agent; the placement test covers arm64 when it has): inside a
// task the secret is at /run/secrets/TARGET with the asked mode and owner on a read-only tmpfs,
// the config at its path; no node's data dir, Raft files or agent log holds the secret's bytes
// (only the tmpfs of nodes running a task does); removal in use is refused; `secret update` rolls
// the service to the new content; scaling to 0 takes every node's copy away.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import t from "tap";
import { uniqueName, waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import { BUSYBOX, cli, liveRunning, servicePs, type TaskRow, waitPs } from "../helpers/services.ts";

const t0 = Date.now();
const lab = await withLab(t, { nodes: 3, cluster: true, registry: true });
t.comment(`lab up --cluster --registry: ${Date.now() - t0} ms`);

/** Files under a node's data dir holding `needle` (grep -r, binary as text; sockets and fifos skipped). */
function filesWith(dir: string, needle: string): string[] {
	try {
		return execFileSync("grep", ["-rlF", "--binary-files=text", "-D", "skip", needle, dir], {
			encoding: "utf8",
			stdio: ["ignore", "pipe", "ignore"],
			maxBuffer: 1 << 24,
		})
			.split("\n")
			.filter(Boolean)
			.sort();
	} catch (err) {
		// grep exits 1 when nothing matched (2 on unreadable files: what matched is still printed).
		return String((err as { stdout?: string }).stdout ?? "")
			.split("\n")
			.filter(Boolean)
			.sort();
	}
}

const inTask = async (row: TaskRow, cmd: string) => {
	const r = await lab.tsswarm(row.node, ["exec", `${row.name}.${row.id}`, "sh", "-c", cmd]);
	if (r.code !== 0) throw new Error(`exec on ${row.node}: ${cmd}: ${r.stderr}`);
	return r.stdout;
};

t.test("a service with a secret and a config", async (t) => {
	const SECRET = `s3cret-${uniqueName("pw")}`;
	const SECRET2 = `n3w-${uniqueName("pw")}`;
	// The data comes on standard input.
	const created = await lab.tsswarm("n3", ["secret", "create", "--label", "app=demo", "db_pass", "-"], {
		input: SECRET,
	});
	t.equal(created.code, 0, `secret create on n3 (a manager forwarding to the leader) ${created.stderr}`);
	const cfg = await lab.tsswarm("n1", ["config", "create", "app.conf", "-"], { input: "listen=8080\n" });
	t.equal(cfg.code, 0, cfg.stderr);
	const big = await lab.tsswarm("n1", ["secret", "create", "toobig", "-"], { input: "x".repeat(500 * 1024 + 1) });
	t.equal(big.code, 1, "over 500 KB is refused");
	t.match(big.stderr, /at most 500 KB/);

	const ls = JSON.parse(await cli(lab, "n2", ["secret", "ls", "--format", "json"])) as Array<{
		Spec: { Name: string; Labels: Record<string, string> };
	}>;
	t.same(
		ls.map((s) => [s.Spec.Name, s.Spec.Labels]),
		[["db_pass", { app: "demo" }]],
		"secret ls on n2 (another manager)",
	);
	t.equal((await cli(lab, "n1", ["secret", "ls", "-q", "--filter", "name=db"])).trim().split("\n").length, 1);
	const shown = await cli(lab, "n1", ["secret", "inspect", "db_pass"]);
	t.notOk(shown.includes(SECRET), "inspect never shows the data");

	const since = Date.now();
	await cli(lab, "n1", [
		"service",
		"create",
		"--quiet",
		"--name",
		"app",
		"--replicas",
		"3",
		"--replicas-max-per-node",
		"1",
		"--stop-grace-period",
		"1s",
		"--secret",
		"source=db_pass,target=db,uid=1000,gid=1000,mode=0400",
		"--config",
		"source=app.conf,target=/etc/app.conf",
		BUSYBOX,
		"sleep",
		"3600",
	]);
	const rows = liveRunning(await waitPs(lab, "n1", "app", "3 running", (r) => liveRunning(r).length === 3, 180_000));
	t.comment(`3 tasks with a secret and a config running after ${Date.now() - since} ms`);
	t.same(rows.map((r) => r.node).sort(), ["n1", "n2", "n3"], "one task per node");

	const pretty = await cli(lab, "n2", ["service", "inspect", "--pretty", "app"]);
	t.match(
		pretty,
		/Secret:\t\tdb_pass \(v1\) -> \/run\/secrets\/db 1000:1000 0400/,
		"inspect --pretty names the secret",
	);
	t.match(pretty, /Config:\t\tapp\.conf \(v1\) -> \/etc\/app\.conf 0:0 0444/);

	for (const row of rows) {
		t.equal(
			(await inTask(row, "stat -c '%a %u %g' /run/secrets/db")).trim(),
			"400 1000 1000",
			`${row.node}: mode, owner`,
		);
		t.equal(await inTask(row, "cat /run/secrets/db"), SECRET, `${row.node}: the secret's content`);
		t.match(
			await inTask(row, "cat /proc/mounts"),
			/^\S+ \/run\/secrets\/db tmpfs ro[, ]/m,
			`${row.node}: on tmpfs, ro`,
		);
		t.equal(await inTask(row, "cat /etc/app.conf"), "listen=8080\n", `${row.node}: the config at its path`);
	}

	// Every node: the bytes are on its tmpfs (positive control) and nowhere else: not in the Raft
	// files, the worker's assignments, the images, the agent's log.
	for (const n of lab.nodes) {
		const found = filesWith(n.dir, SECRET);
		const files = join(n.dir, "worker", "files");
		t.ok(
			found.some((f) => f.startsWith(`${files}/`)),
			`${n.name}: the task's file on the tmpfs holds it`,
		);
		t.same(
			found.filter((f) => !f.startsWith(`${files}/`)),
			[],
			`${n.name}: nothing else under its data dir (raft/ included) holds the secret`,
		);
	}

	// An agent restart: the container it re-adopts keeps its secret (the tmpfs outlives the agent).
	const on3 = rows.find((r) => r.node === "n3")!;
	await lab.stop("n3");
	await lab.start("n3");
	const after = await waitPs(
		lab,
		"n1",
		"app",
		"3 running again",
		(r) => liveRunning(r).length === 3 && liveRunning(r).some((x) => x.node === "n3"),
		120_000,
	);
	const again = liveRunning(after).find((r) => r.node === "n3")!;
	t.equal(again.id, on3.id, "n3's task was re-adopted, not replaced");
	t.equal(await inTask(again, "cat /run/secrets/db"), SECRET, "and still reads its secret");

	const rm = await lab.tsswarm("n2", ["secret", "rm", "db_pass"]);
	t.equal(rm.code, 1, "a secret in use is not removed");
	t.match(rm.stderr, /secret db_pass is in use by the following service: app/);

	// A new version rolls the service; the new content is what the tasks see.
	const rollStart = Date.now();
	const up = await lab.tsswarm("n1", ["secret", "update", "db_pass", "-"], { input: SECRET2 });
	t.equal(up.code, 0, up.stderr);
	t.match(up.stderr, /version 2: rolling app/);
	const v2 = await waitFor(
		"every task with the new secret",
		async () => {
			const live = liveRunning(await servicePs(lab, "n1", "app"));
			if (live.length !== 3) return undefined;
			const seen = await Promise.all(live.map((r) => inTask(r, "cat /run/secrets/db").catch(() => "")));
			return seen.every((s) => s === SECRET2) ? live : undefined;
		},
		{ timeoutMs: 240_000, intervalMs: 1000 },
	);
	t.comment(`rolled to the new version in ${Date.now() - rollStart} ms`);
	t.notSame(v2.map((r) => r.id).sort(), rows.map((r) => r.id).sort(), "new tasks replaced the old ones");

	// Scale to 0: every node's copy goes.
	await cli(lab, "n1", ["service", "scale", "app=0"]);
	await waitPs(lab, "n1", "app", "none running", (r) => liveRunning(r).length === 0, 120_000);
	for (const n of lab.nodes)
		await waitFor(`${n.name}: no copy left`, () => filesWith(n.dir, SECRET2).length === 0, {
			timeoutMs: 30_000,
			intervalMs: 500,
		});
	t.pass("no node holds the secret after scaling to 0");

	await cli(lab, "n1", ["service", "rm", "app"]);
	t.equal((await cli(lab, "n1", ["secret", "rm", "db_pass"])).trim(), "db_pass", "removable once unused");
	t.equal((await cli(lab, "n1", ["config", "rm", "app.conf"])).trim(), "app.conf");
});
