// Encryption at rest and autolock on a real 2-node lab (n1 manager, n2 worker): the manager's Raft
// dir holds no store value in the clear; with `init --autolock` a restarted manager is locked (423
// on its API but info, its Raft dir untouched, its tasks still running) until `tsswarm unlock` with
// the right key; `unlock-key --rotate` retires the old key; `swarm update --autolock=false` ends it.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { call } from "../../agent/api/index.ts";
import { formatUnlockKey, newKey } from "../../agent/keyring/index.ts";
import { type LabAgent, startAgent } from "../helpers/agents.ts";
import { waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import { BUSYBOX, cli, containersOn, liveRunning, serviceLs, waitPs } from "../helpers/services.ts";

const KEY = /TSWKEY-1-[A-Za-z0-9_-]+/;

const lab = await withLab(t, { nodes: 2, registry: true });
const n1 = lab.nodes.find((n) => n.name === "n1")!;
const raftDir = join(n1.dir, "raft");

const agents = new Map<string, LabAgent>();
/** Starts a node's agent and waits until its API answers (its socket may exist a moment before). */
const start = async (node: string) => {
	const a = await startAgent(lab, node);
	agents.set(node, a);
	const root = lab.nodes.find((n) => n.name === node)!.dir;
	await waitFor(`${node}'s API`, () => call(root, "GET", "/v1/info").catch(() => undefined), {
		timeoutMs: 20_000,
		intervalMs: 200,
	});
	return a;
};
t.teardown(async () => {
	for (const a of agents.values()) await a.stop("SIGKILL");
});

/** Every file under dir, recursively. */
function files(dir: string): string[] {
	return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
		e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
	);
}
const rawHolds = (marker: string) => files(raftDir).filter((f) => readFileSync(f).includes(marker));
/** Names, sizes and modification times of the Raft dir's files: changes when Raft writes. */
const fingerprint = () =>
	files(raftDir)
		.map((f) => {
			const s = statSync(f);
			return `${f}:${s.size}:${s.mtimeMs}`;
		})
		.sort()
		.join("\n");

const info = (node: string) =>
	call<{ locked?: boolean; clusterId: string | null; raft: { index: number } | null }>(
		lab.nodes.find((n) => n.name === node)!.dir,
		"GET",
		"/v1/info",
	);

/** The error an API call on n1 fails with (undefined when it succeeds). */
const apiError = (method: "GET" | "POST", path: string, body?: unknown) =>
	call(n1.dir, method, path, body).then(
		() => undefined,
		(e: unknown) => e as { code?: string; status?: number; message: string },
	);

const restartN1 = async () => {
	await agents.get("n1")!.stop("SIGTERM");
	await start("n1");
};

/** Waits until n1 serves the store again and has caught up (it lists the service). */
const waitServes = (what: string) =>
	waitFor(
		what,
		async () => {
			const svcs = await serviceLs(lab, "n1").catch(() => undefined);
			return svcs?.some((s) => s.name === "locker") ? svcs : undefined;
		},
		{ timeoutMs: 60_000, intervalMs: 500 },
	);

const marker = `autolock-marker-${process.pid}-${Date.now()}`;
let key = "";

t.test("init --autolock prints the unlock key once; the Raft dir holds no store value in the clear", async (t) => {
	await start("n1");
	await start("n2");
	const init = await lab.tsswarm("n1", ["init", "--autolock", "--default-addr-pool", "198.19.0.0/16"]);
	t.equal(init.code, 0, init.stderr);
	key = KEY.exec(init.stdout)?.[0] ?? "";
	t.ok(key, "init printed an unlock key");
	t.match(init.stdout, /tsswarm unlock/);
	const token = /TSWARM-1-\S+/.exec(init.stdout)?.[0];
	const joined = await lab.tsswarm("n2", ["join", "--token", token!, `${n1.address}:2377`]);
	t.equal(joined.code, 0, joined.stderr);
	await cli(lab, "n1", [
		"service",
		"create",
		"--quiet",
		"--name",
		"locker",
		"--replicas",
		"2",
		"--stop-grace-period",
		"1s",
		"--env",
		`MARKER=${marker}`,
		BUSYBOX,
		"sleep",
		"3600",
	]);
	await waitPs(lab, "n1", "locker", "2 running", (rs) => liveRunning(rs).length === 2, 120_000);
	const inspect = await cli(lab, "n1", ["service", "inspect", "locker"]);
	t.ok(inspect.includes(marker), "control: the value is in the store (service inspect shows it)");
	t.same(rawHolds(marker), [], "no file under DATA/raft holds it in the clear");
	t.ok(
		files(raftDir).some((f) => f.endsWith(".seg")),
		"control: the Raft log is there",
	);
	const logs = readFileSync(join(n1.dir, "agent.log"), "utf8");
	t.notOk(logs.includes(key), "the unlock key is not in the agent's log");
	t.notOk((await cli(lab, "n1", ["info", "--format", "json"])).includes(key), "nor in info");
	t.equal((await cli(lab, "n1", ["unlock-key", "-q"])).trim(), key, "unlock-key prints it on request");
});

t.test(
	"a restarted manager is locked: it serves nothing but info, its Raft is not run, its tasks keep running",
	async (t) => {
		const before = (await containersOn(lab, "n1", "locker", { running: true })).map((c) => c.id);
		t.equal(before.length, 1, "control: n1 runs one replica");
		await agents.get("n1")!.stop("SIGTERM");
		const print = fingerprint();
		await start("n1");
		t.equal((await info("n1")).locked, true, "info says locked");
		t.match(await cli(lab, "n1", ["info"]), /Swarm: locked/);
		const ls = await lab.tsswarm("n1", ["service", "ls"]);
		t.equal(ls.code, 1, "service ls fails");
		t.match(ls.stderr, /this manager is locked: run `tsswarm unlock`/);
		for (const [m, p] of [
			["GET", "/v1/services"],
			["GET", "/v1/nodes"],
			["GET", "/v1/networks"],
			["POST", "/v1/join-token"],
			["POST", "/v1/unlock-key"],
		] as const) {
			const err = await apiError(m, p, m === "POST" ? (p.endsWith("token") ? { role: "worker" } : {}) : undefined);
			t.equal(err?.status, 423, `${m} ${p}: 423`);
			t.equal(err?.code, "ERR_LOCKED", `${m} ${p}: ERR_LOCKED`);
		}
		// Its containers outlive the lock; no Raft runs: nothing under DATA/raft was opened for writing.
		await new Promise((r) => setTimeout(r, 3000));
		t.same(
			(await containersOn(lab, "n1", "locker", { running: true })).map((c) => c.id),
			before,
			"its replica still runs, the same container",
		);
		t.equal(fingerprint(), print, "the Raft dir is untouched while locked");
		t.equal((await info("n1")).raft, null, "no Raft replica is running");

		const wrong = await lab.tsswarm("n1", ["unlock"], { input: formatUnlockKey(newKey()) });
		t.equal(wrong.code, 1, "a wrong key is refused");
		t.match(wrong.stderr, /invalid unlock key: it does not open this manager's keys/);
		const garbled = await lab.tsswarm("n1", ["unlock"], { input: `${key.slice(0, -2)}xx` });
		t.equal(garbled.code, 1);
		t.match(garbled.stderr, /invalid unlock key: (checksum mismatch|it does not open)/);
		t.equal((await info("n1")).locked, true, "still locked after wrong keys");

		const ok = await lab.tsswarm("n1", ["unlock"], { input: `${key}\n` });
		t.equal(ok.code, 0, ok.stderr);
		t.notOk((await info("n1")).locked, "unlocked");
		const svcs = await waitServes("service ls on n1 after unlock");
		t.same(
			svcs.map((s) => s.name),
			["locker"],
			"it serves the store again, caught up",
		);
		await cli(lab, "n1", ["service", "scale", "locker=3"]);
		await waitPs(lab, "n1", "locker", "3 running", (rs) => liveRunning(rs).length === 3, 120_000);
		t.not(fingerprint(), print, "control: unlocked, its Raft writes again");
		t.same(rawHolds(marker), [], "and still nothing in the clear");
		const again = await lab.tsswarm("n1", ["unlock"], { input: key });
		t.equal(again.code, 1, "unlock on an unlocked manager is refused");
		t.match(again.stderr, /not locked/);
	},
);

t.test("unlock-key --rotate: after a restart the old key no longer unlocks, the new one does", async (t) => {
	const rot = await cli(lab, "n1", ["unlock-key", "--rotate"]);
	const next = KEY.exec(rot)?.[0] ?? "";
	t.ok(next && next !== key, "a new key is printed");
	t.match(rot, /Successfully rotated/);
	await restartN1();
	t.equal((await info("n1")).locked, true, "locked after the restart");
	const old = await lab.tsswarm("n1", ["unlock"], { input: key });
	t.equal(old.code, 1, "the old key is refused");
	t.match(old.stderr, /does not open this manager's keys/);
	const ok = await lab.tsswarm("n1", ["unlock"], { input: next });
	t.equal(ok.code, 0, ok.stderr);
	await waitServes("service ls after unlock");
	key = next;
});

t.test("swarm update --autolock=false: a restarted manager is not locked; =true locks it again", async (t) => {
	const off = await lab.tsswarm("n1", ["swarm", "update", "--autolock=false"]);
	t.equal(off.code, 0, off.stderr);
	t.notOk(KEY.test(off.stdout), "no key printed when turning it off");
	const none = await lab.tsswarm("n1", ["unlock-key"]);
	t.equal(none.code, 1);
	t.match(none.stderr, /autolock is off/);
	await restartN1();
	t.notOk((await info("n1")).locked, "not locked");
	await waitServes("service ls without unlock");
	const on = await lab.tsswarm("n1", ["swarm", "update", "--autolock=true"]);
	t.equal(on.code, 0, on.stderr);
	const fresh = KEY.exec(on.stdout)?.[0];
	t.ok(fresh, "turning it on prints a key");
	await restartN1();
	t.equal((await info("n1")).locked, true, "locked again");
	t.equal((await lab.tsswarm("n1", ["unlock"], { input: fresh! })).code, 0);
	await waitServes("service ls after unlock");
	await cli(lab, "n1", ["service", "rm", "locker"]);
});
