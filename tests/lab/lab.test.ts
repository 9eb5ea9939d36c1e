import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { existingNetns, labRoot, pidAlive, readRecord, run, sweepStaleLabs } from "../../cli/lab/index.ts";
import { tempDir, uniqueName, waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";

const repo = new URL("../..", import.meta.url).pathname;
const cli = join(repo, "cli/tsswarm.ts");

async function netnsOf(lab: string): Promise<string[]> {
	return [...(await existingNetns())].filter((n) => n.startsWith(`tsl-${lab}-`));
}

async function rootLinks(): Promise<string> {
	return (await run(["ip", "-o", "link", "show"])).stdout;
}

t.test("3 nodes: every node pings every other; down leaves nothing", async (t) => {
	const linksBefore = await rootLinks();
	const lab = await withLab(t, { nodes: 3 });
	t.equal(lab.nodes.length, 3);
	t.same(
		lab.nodes.map((n) => n.address),
		["198.18.0.1", "198.18.0.2", "198.18.0.3"],
	);
	t.same((await netnsOf(lab.name)).sort(), [...lab.nodes.map((n) => n.netns), `tsl-${lab.name}-hub`].sort());
	for (const n of lab.nodes) t.ok(existsSync(n.dir), `${n.name} has its own directory`);
	for (const from of lab.nodes) {
		for (const to of lab.nodes) {
			if (from === to) continue;
			const r = await lab.exec(from.name, ["ping", "-c", "1", "-W", "2", to.address]);
			t.equal(r.code, 0, `${from.name} pings ${to.name} (${to.address})`);
		}
	}
	// Each node sees only loopback and its eth0 with its own address: nothing leaks into the host.
	const addr = await lab.exec("n2", ["ip", "-o", "-4", "addr", "show"]);
	t.match(addr.stdout, /eth0\s+inet 198\.18\.0\.2\/16/);
	t.equal(await rootLinks(), linksBefore, "no link was added to the host's namespace");

	// A process started inside a node must not survive `down`.
	const sleeper = spawn("ip", ["netns", "exec", lab.nodes[0]!.netns, "sleep", "600"], { stdio: "ignore" });
	await waitFor("sleeper inside n1", async () =>
		(await run(["ip", "netns", "pids", lab.nodes[0]!.netns])).stdout.trim(),
	);
	const pid = sleeper.pid!;

	await lab.destroy();
	t.same(await netnsOf(lab.name), [], "no namespace left");
	t.notOk(existsSync(join(labRoot(), lab.name)), "no lab directory or record left");
	await waitFor("the sleeper to be gone", () => !pidAlive(pid), { timeoutMs: 5000 });
	t.notOk(pidAlive(pid), "no process left");
	t.equal(await rootLinks(), linksBefore, "no link left in the host namespace");
});

t.test("a lab whose owner was SIGKILLed mid-way is swept by the next run", async (t) => {
	const name = uniqueName("k");
	// A lab root of its own: the other test files sweep stale labs of the shared root as they
	// start, and would take this one away before `lab ls` could see it.
	const root = tempDir("tsswarm-labroot-");
	const env = { ...process.env, TSSWARM_LAB_ROOT: root.path };
	t.teardown(async () => {
		await sweepStaleLabs({ root: root.path });
		root.remove();
	});
	// A child process builds a lab and starts a process in it, then is killed with SIGKILL.
	const script = `
		import { createLab, run } from ${JSON.stringify(join(repo, "cli/lab/index.ts"))};
		import { spawn } from "node:child_process";
		const rec = await createLab({ name: ${JSON.stringify(name)}, nodes: 2 });
		spawn("ip", ["netns", "exec", rec.nodes[1].netns, "sleep", "600"], { stdio: "ignore", detached: true }).unref();
		for (;;) {
			const { stdout } = await run(["ip", "netns", "pids", rec.nodes[1].netns]);
			if (stdout.trim()) break;
		}
		process.stdout.write("ready\\n");
		setInterval(() => {}, 1000);
	`;
	const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
		stdio: ["ignore", "pipe", "inherit"],
		env,
	});
	t.teardown(() => {
		if (child.exitCode === null) child.kill("SIGKILL");
	});
	let out = "";
	child.stdout.on("data", (d) => {
		out += d;
	});
	await waitFor("the child to build its lab", () => out.includes("ready"), { timeoutMs: 30_000 });
	const rec = readRecord(root.path, name);
	t.ok(rec, "the lab recorded itself");
	const orphanPids = (await run(["ip", "netns", "pids", rec!.nodes[1]!.netns])).stdout
		.split(/\s+/)
		.filter(Boolean)
		.map(Number);
	t.ok(orphanPids.length > 0, "a process runs inside the lab");
	child.kill("SIGKILL");
	await new Promise((r) => child.once("exit", r));
	t.equal((await netnsOf(name)).length, 3, "the killed run left its namespaces behind");

	// `lab ls` reports it as stale, and the next lab command sweeps it.
	const ls = await run([process.execPath, cli, "lab", "ls", "--json"], { env });
	const listed = (JSON.parse(ls.stdout) as Array<{ name: string; stale: boolean }>).find((l) => l.name === name);
	t.equal(listed?.stale, true, "lab ls marks it stale");
	const swept = await sweepStaleLabs({ root: root.path });
	t.ok(swept.includes(name), "the sweep removed it");
	t.same(await netnsOf(name), [], "no namespace left");
	t.notOk(existsSync(join(root.path, name)), "no lab directory left");
	for (const pid of orphanPids) await waitFor(`orphan ${pid} gone`, () => !pidAlive(pid), { timeoutMs: 5000 });
});

t.test("SIGTERM during `lab up` removes what was made so far", async (t) => {
	const name = uniqueName("s");
	const child = spawn(process.execPath, [cli, "lab", "up", "--nodes", "120", "--name", name, "--no-registry"], {
		stdio: ["ignore", "pipe", "pipe"],
	});
	t.teardown(async () => {
		if (child.exitCode === null) child.kill("SIGKILL");
		await run([process.execPath, cli, "lab", "down", "--name", name], { allowFailure: true });
	});
	let err = "";
	child.stderr.on("data", (d) => {
		err += d;
	});
	await waitFor("lab up to start creating", () => err.includes("creating"), { timeoutMs: 30_000 });
	child.kill("SIGTERM");
	const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
	t.equal(code, 143, `lab up exits 143 after SIGTERM (stderr: ${err.trim()})`);
	t.same(await netnsOf(name), [], "no namespace left");
	t.notOk(existsSync(join(labRoot(), name)), "no lab directory left");
});

t.test("CLI: bad names and counts are usage errors; exec into a missing node fails clearly", async (t) => {
	const bad = await run([process.execPath, cli, "lab", "up", "--name", "Bad_Name"], { allowFailure: true });
	t.equal(bad.code, 2);
	t.match(bad.stderr, /^tsswarm: invalid lab name "Bad_Name"/);
	const zero = await run([process.execPath, cli, "lab", "up", "--nodes", "0"], { allowFailure: true });
	t.equal(zero.code, 2);
	t.match(zero.stderr, /--nodes must be an integer/);
	const lab = await withLab(t, { nodes: 1 });
	const missing = await run([process.execPath, cli, "lab", "exec", "--name", lab.name, "n7", "--", "true"], {
		allowFailure: true,
	});
	t.equal(missing.code, 1);
	t.match(missing.stderr, /has no node "n7" \(nodes: n1\)/);
	const ok = await run([process.execPath, cli, "lab", "exec", "--name", lab.name, "n1", "--", "sh", "-c", "exit 3"], {
		allowFailure: true,
	});
	t.equal(ok.code, 3, "lab exec passes the command's exit code through");
	const env = await run([
		process.execPath,
		cli,
		"lab",
		"exec",
		"--name",
		lab.name,
		"n1",
		"--",
		"printenv",
		"TSSWARM_DATA_ROOT",
	]);
	t.equal(env.stdout.trim(), lab.nodes[0]!.dir);
	t.ok(readFileSync("/proc/self/mountinfo", "utf8").length > 0);
});
