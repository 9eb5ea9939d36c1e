// A compose file deployed as a stack on a real 3-node cluster (one arm64): examples/stack/compose.yml goes in
// unchanged (db first: web waits for it to be healthy), its services reach each other by name on
// the overlays, its secret and config are files in the containers with the asked owner and mode
// (the secret on tmpfs, in clear on no node's disk), stack ls/services/ps list it; changing one
// service in the file and deploying again rolls only that service (the others keep their task
// ids), a changed config file rolls the service using it; --prune removes what left the file; an
// invalid file changes nothing; stack rm removes the services, networks, secrets and configs it made.
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import type { NetworkInspect } from "../../agent/api/index.ts";
import { tempDir, waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import { cli, liveRunning, resolveIn, serviceLs, servicePs, type TaskRow } from "../helpers/services.ts";

const EXAMPLE_DIR = new URL("../../examples/stack/", import.meta.url).pathname;
const EXAMPLE = join(EXAMPLE_DIR, "compose.yml");
const PASSWORD = readFileSync(join(EXAMPLE_DIR, "db_password.txt"), "utf8");

t.test("the example stack deploys unchanged, re-deploys only what changed, prunes and is removed", async (t) => {
	// One arm64 node (through qemu-user): the stack's multi-arch images run there too.
	const lab = await withLab(t, {
		nodes: 3,
		cluster: true,
		registry: true,
		platforms: ["linux/amd64", "linux/amd64", "linux/arm64"],
	});
	const d = tempDir("tsswarm-stack-lab-");
	t.teardown(d.remove);
	const file = join(d.path, "compose.yml");
	cpSync(EXAMPLE_DIR, d.path, { recursive: true });
	const sw = (args: string[]) => cli(lab, "n1", args);
	const ids = (rows: TaskRow[]) =>
		liveRunning(rows)
			.map((r) => r.id)
			.sort();
	const converged = (svc: string, n: number) =>
		waitFor(
			`${svc}: ${n} running`,
			async () => {
				const r = liveRunning(await servicePs(lab, "n1", svc));
				return r.length === n ? r : undefined;
			},
			{ timeoutMs: 120_000, intervalMs: 500 },
		);

	let started = Date.now();
	const out = await sw(["stack", "deploy", "-c", file, "demo"]);
	t.pass(`stack deploy took ${Date.now() - started} ms`);
	const lines = out.trim().split("\n");
	t.same(
		lines.filter((l) => l.startsWith("Creating")),
		[
			"Creating network demo_back",
			"Creating network demo_front",
			"Creating secret demo_db_password",
			"Creating config demo_web_conf",
			"Creating service demo_db",
			"Creating service demo_web",
			"Creating service demo_worker",
		],
		"networks, then db, then web (it waits for db), then the worker",
	);
	t.ok(
		lines.indexOf("Waiting for demo_db to be healthy (depends_on of web)") < lines.indexOf("Creating service demo_web"),
		"web was created after db was healthy",
	);
	const db0 = await converged("demo_db", 1);
	const web0 = await converged("demo_web", 2);
	const worker0 = await converged("demo_worker", 1);
	t.pass(`all 4 tasks running ${Date.now() - started} ms after the deploy began`);

	t.match(await sw(["stack", "ls"]), /^NAME\s+SERVICES\s*\ndemo\s+3\s*$/m, "stack ls");
	const services = await sw(["stack", "services", "demo", "--format", "{{.Name}} {{.Replicas}}"]);
	t.same(services.trim().split("\n"), ["demo_db 1/1", "demo_web 2/2", "demo_worker 1/1"], "stack services");
	// The running ones: on a loaded machine a slow first start may have left a failed task behind.
	const tasks = await sw(["stack", "ps", "demo", "--filter", "desired-state=running", "--format", "{{.Name}}"]);
	const history = await sw(["stack", "ps", "demo", "--format", "{{.Name}} {{.CurrentState}} {{.Error}}"]);
	t.same(
		tasks.trim().split("\n").sort(),
		["demo_db.1", "demo_web.1", "demo_web.2", "demo_worker.1"],
		`stack ps (all: ${history.trim().replaceAll("\n", "; ")})`,
	);
	const nets = JSON.parse(await sw(["network", "ls", "--format", "json"])) as NetworkInspect[];
	const stackNets = nets.filter((n) => n.Labels["com.docker.stack.namespace"] === "demo").map((n) => n.Name);
	t.same(stackNets.sort(), ["demo_back", "demo_front"], "the stack's networks, labelled with its namespace");

	// By name, from inside the worker's task: web (its VIP on back), db and its alias database.
	const w = worker0[0]!;
	const inWorker = (cmd: string) => lab.tsswarm(w.node, ["exec", `${w.name}.${w.id}`, "sh", "-c", cmd]);
	const page = await waitFor(
		"the worker reaches web by name",
		async () => /hello from/.exec((await inWorker("timeout 3 wget -q -O- http://web/")).stdout)?.[0],
		{ timeoutMs: 30_000 },
	);
	t.ok(page, "http://web/ answers inside the worker");
	t.match((await inWorker("timeout 3 wget -q -O- http://db:5432/")).stdout, /hello from db/, "db:5432 answers");
	t.ok(await resolveIn(inWorker, "database"), "the alias database resolves");
	t.same(await resolveIn(inWorker, "nosuchservice"), undefined, "control: a name that is no service does not resolve");

	// The secret and the config, as files in the tasks: owner, mode, content; the secret on tmpfs.
	const inTask = (r: TaskRow) => (cmd: string) => lab.tsswarm(r.node, ["exec", `${r.name}.${r.id}`, "sh", "-c", cmd]);
	const inDb = inTask(db0[0]!);
	const inWeb = inTask(web0[0]!);
	t.equal((await inDb("stat -c '%a %u %g' /run/secrets/db_password")).stdout.trim(), "400 0 0", "db: mode 0400, root");
	t.equal(
		(await inWeb("stat -c '%a %u %g' /run/secrets/db_password")).stdout.trim(),
		"440 1000 1000",
		"web: 0440, 1000:1000",
	);
	t.equal((await inDb("cat /run/secrets/db_password")).stdout, PASSWORD, "the secret's content");
	t.equal((await inDb("echo $(ulimit -Sn) $(ulimit -Hn)")).stdout, "4096 8192\n", "db's ulimits");
	t.match((await inDb("cat /proc/mounts")).stdout, /^\S+ \/run\/secrets\S* tmpfs /m, "the secret is on tmpfs");
	t.equal(
		(await inWeb("cat /etc/web/site.conf")).stdout,
		readFileSync(join(d.path, "site.conf"), "utf8"),
		"the config",
	);
	// Files holding the password in clear under `dir`, each with its filesystem type.
	const clear = (dir: string) => {
		let out = "";
		try {
			out = execFileSync("grep", ["-rlaF", PASSWORD.trim(), dir], { encoding: "utf8" }).trim();
		} catch (err) {
			if ((err as { status?: number }).status !== 1) throw err; // 1: no match
		}
		return out
			.split("\n")
			.filter(Boolean)
			.map((f) => ({ f, fs: execFileSync("stat", ["-f", "-c", "%T", f], { encoding: "utf8" }).trim() }));
	};
	t.ok(clear(d.path).length > 0, "control: grep finds the password in the stack's own directory");
	for (const n of lab.nodes) {
		const found = clear(n.dir);
		t.same(
			found.filter((x) => x.fs !== "tmpfs"),
			[],
			`${n.name}: no file on disk holds the secret in clear (${found.length} on tmpfs, for its tasks)`,
		);
	}
	const onTmpfs = lab.nodes.flatMap((n) => clear(n.dir)).length;
	t.ok(onTmpfs >= 2, `control: the tasks' copies are found (${onTmpfs}, all on tmpfs)`);

	// Change the worker only, deploy again: the worker rolls, db and web keep their tasks.
	writeFileSync(file, readFileSync(EXAMPLE, "utf8").replace("polled web", "polled web again"));
	started = Date.now();
	const again = await sw(["stack", "deploy", "-c", file, "demo"]);
	t.match(again, /Updating service demo_worker/, "the worker is updated");
	t.notMatch(again, /Updating service demo_(web|db)/, "web and db are not");
	t.notMatch(again, /Creating/, "nothing is created");
	const worker1 = await waitFor(
		"the worker's new task",
		async () => {
			const r = liveRunning(await servicePs(lab, "n1", "demo_worker"));
			return r.length === 1 && r[0]!.id !== w.id ? r : undefined;
		},
		{ timeoutMs: 120_000, intervalMs: 500 },
	);
	t.pass(`the worker rolled in ${Date.now() - started} ms`);
	t.not(worker1[0]!.id, w.id, "the worker has a new task");
	const inspect = JSON.parse(await sw(["service", "inspect", "demo_worker"]))[0];
	t.match(inspect.value.spec.task.container.env, ["WORK_MESSAGE=polled web again"]);
	const webNow = await servicePs(lab, "n1", "demo_web");
	t.same(
		ids(webNow),
		ids(web0),
		`web kept its task ids (${JSON.stringify(webNow.map((r) => [r.id, r.node, r.state, r.error]))})`,
	);
	t.same(ids(await servicePs(lab, "n1", "demo_db")), ids(db0), "db kept its task id");

	// A changed config file: a new version of the config, and web (which uses it) rolls; db does not.
	writeFileSync(join(d.path, "site.conf"), "server_name changed;\n");
	const conf = await sw(["stack", "deploy", "-c", file, "demo"]);
	t.match(conf, /Updating config demo_web_conf/);
	const web1 = await waitFor(
		"web's tasks replaced with the new config",
		async () => {
			const r = liveRunning(await servicePs(lab, "n1", "demo_web"));
			return r.length === 2 && r.every((x) => !ids(web0).includes(x.id)) ? r : undefined;
		},
		{ timeoutMs: 180_000, intervalMs: 500 },
	);
	t.equal(
		(await inTask(web1[0]!)("cat /etc/web/site.conf")).stdout,
		"server_name changed;\n",
		"web has the new config",
	);
	t.same(ids(await servicePs(lab, "n1", "demo_db")), ids(db0), "db (no config) kept its task id");

	// An invalid file changes nothing (and says where it is wrong).
	const bad = join(d.path, "bad.yml");
	writeFileSync(bad, readFileSync(EXAMPLE, "utf8").replace("replicas: 2", "replicas: 2\n      replicaz: 3"));
	const refused = await lab.tsswarm("n1", ["stack", "deploy", "-c", bad, "demo"]);
	t.equal(refused.code, 1, "refused");
	t.match(refused.stderr, /services\.web\.deploy Additional property replicaz is not allowed/);
	t.same(ids(await servicePs(lab, "n1", "demo_web")), ids(web1), "web is untouched");
	// Files the agent refuses (its spec check), as a new stack: not even its networks are created.
	const twin = await lab.tsswarm("n1", ["stack", "deploy", "-c", file, "other"]);
	t.equal(twin.code, 1, "the same file as another stack: refused");
	t.match(twin.stderr, /service web: port 8080\/tcp is already in use by service demo_web/);
	const capBad = join(d.path, "cap.yml");
	writeFileSync(
		capBad,
		readFileSync(EXAMPLE, "utf8")
			.replace("cap_drop: [NET_RAW]", "cap_drop: [NOT-A-CAP]")
			.replace('"8080:80"', '"8081:80"'),
	);
	const capRefused = await lab.tsswarm("n1", ["stack", "deploy", "-c", capBad, "other"]);
	t.equal(capRefused.code, 1, "refused by the agent's check");
	t.match(capRefused.stderr, /service worker: .*"NOT-A-CAP" is not a capability/);
	const netsNow = JSON.parse(await sw(["network", "ls", "--format", "json"])) as NetworkInspect[];
	t.same(
		netsNow.filter((n) => n.Name.startsWith("other_")),
		[],
		"no network of stack other was created",
	);
	t.notMatch(await sw(["secret", "ls"]), /other_/, "nor a secret");

	// --prune: the worker left the file.
	const noWorker = join(d.path, "no-worker.yml");
	writeFileSync(
		noWorker,
		readFileSync(EXAMPLE, "utf8").replace(/\n {2}worker:\n(?: {4}.*\n| {6}.*\n| {8}.*\n| {10}.*\n)+/, "\n"),
	);
	const kept = await sw(["stack", "deploy", "-c", noWorker, "demo"]);
	t.notMatch(kept, /Removing/, "without --prune nothing is removed");
	t.ok(
		(await serviceLs(lab, "n1")).some((s) => s.name === "demo_worker"),
		"the worker stays",
	);
	const pruned = await sw(["stack", "deploy", "--prune", "-c", noWorker, "demo"]);
	t.match(pruned, /Removing service demo_worker/);
	t.same(
		(await serviceLs(lab, "n1")).map((s) => s.name).sort(),
		["demo_db", "demo_web"],
		"the worker is gone, db and web stay",
	);
	t.same(ids(await servicePs(lab, "n1", "demo_web")), ids(web1), "web kept its task ids through --prune");

	// stack rm: services, secrets, configs and networks it made.
	const rm = await sw(["stack", "rm", "demo"]);
	t.match(
		rm,
		/Removing service demo_db\nRemoving service demo_web\nRemoving secret demo_db_password\nRemoving config demo_web_conf\nRemoving network demo_(back|front)\nRemoving network demo_(back|front)/,
	);
	t.notMatch(await sw(["secret", "ls"]), /demo_/, "no secret of the stack left");
	t.notMatch(await sw(["config", "ls"]), /demo_/, "no config of the stack left");
	t.same(
		(await serviceLs(lab, "n1")).map((s) => s.name),
		[],
		"no service left",
	);
	const after = JSON.parse(await sw(["network", "ls", "--format", "json"])) as NetworkInspect[];
	t.same(
		after.filter((n) => n.Name.startsWith("demo_")).map((n) => n.Name),
		[],
		"no network of the stack left",
	);
	t.ok(after.length > 0, "control: network ls still lists the cluster's other networks");
	const none = await lab.tsswarm("n1", ["stack", "rm", "demo"]);
	t.equal(none.code, 1, "removing it again finds nothing");
	t.match(none.stderr, /Nothing found in stack: demo/);
});
