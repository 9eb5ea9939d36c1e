// Rolling updates on real agents: start-first and stop-first keep their capacity floors, a failing
// health check pauses, continues or rolls back as asked, a task that never starts trips the
// progress deadline, a stale --version is refused, rollback restores the digest, and an update
// survives its leader being SIGKILLed with exactly one live task per slot at the end.
import t from "tap";
import { waitFor } from "../helpers/index.ts";
import { type Lab, withLab } from "../helpers/lab.ts";
import { BUSYBOX, leaderName, runningEverywhere, total } from "../helpers/services.ts";

interface Row {
	id: string;
	slot?: number;
	node: string;
	image: string;
	desiredState: string;
	state: string;
	specVersion: number;
}
interface Inspect {
	id: string;
	version: number;
	value: {
		spec: { task: { container: { image: string } } };
		specVersion: number;
		updateStatus?: { state: string; startedAt?: string; completedAt?: string; message?: string };
	};
}

const REG = "198.18.0.254:5000";
const HTTPD = `${REG}/httpd:latest`;

async function json<T>(lab: Lab, on: string, args: string[]): Promise<T> {
	const r = await lab.tsswarm(on, args);
	if (r.code !== 0) throw new Error(`tsswarm ${args.join(" ")} on ${on}: ${r.stderr.trim()}`);
	return JSON.parse(r.stdout) as T;
}
const ps = (lab: Lab, on: string, svc: string) => json<Row[]>(lab, on, ["service", "ps", "--format", "json", svc]);
const inspect = async (lab: Lab, on: string, svc: string) =>
	(await json<Inspect[]>(lab, on, ["service", "inspect", svc]))[0]!;
const running = (rows: Row[]) => rows.filter((r) => r.desiredState === "running" && r.state === "running");

async function create(lab: Lab, name: string, replicas: number, extra: string[] = []): Promise<void> {
	const r = await lab.tsswarm("n1", [
		"service",
		"create",
		"--detach",
		"--name",
		name,
		"--replicas",
		String(replicas),
		"--stop-grace-period",
		"1s",
		"--rollback-monitor",
		"1s",
		...extra,
		BUSYBOX,
		"sleep",
		"3600",
	]);
	if (r.code !== 0) throw new Error(`create ${name}: ${r.stderr}`);
	await waitFor(`${name}: ${replicas} running`, async () => running(await ps(lab, "n1", name)).length === replicas, {
		timeoutMs: 90_000,
		intervalMs: 500,
	});
}

/** Runs an update to its end while sampling `service ps`: the fewest running tasks seen. */
async function sampled(lab: Lab, svc: string, args: string[]) {
	let done = false;
	const update = lab.tsswarm("n1", ["service", "update", ...args, svc]).finally(() => {
		done = true;
	});
	let min = Number.POSITIVE_INFINITY;
	let samples = 0;
	while (!done) {
		min = Math.min(min, running(await ps(lab, "n1", svc)).length);
		samples++;
	}
	return { r: await update, min, samples };
}

const statusOf = async (lab: Lab, svc: string, on = "n1") => (await inspect(lab, on, svc)).value.updateStatus;

t.test("service update and rollback on a 3-node cluster", async (t) => {
	const lab = await withLab(t, { nodes: 3, cluster: true, registry: true });

	await t.test("start-first, parallelism 2: never fewer than 6 running; rollback restores the digest", async (t) => {
		await create(lab, "sf", 6);
		const before = (await inspect(lab, "n1", "sf")).value.spec.task.container.image;
		t.match(before, /busybox:latest@sha256:[0-9a-f]{64}$/, "create pinned the digest");
		const u = await sampled(lab, "sf", [
			"--image",
			HTTPD,
			"--update-parallelism",
			"2",
			"--update-order",
			"start-first",
			"--update-monitor",
			"1s",
			"--update-delay",
			"2s",
		]);
		t.equal(u.r.code, 0, `update succeeded (${u.r.stderr.trim()})`);
		t.match(u.r.stdout, /overall progress: 6 out of 6 tasks/);
		t.match(u.r.stdout, /verify: Service converged/);
		t.ok(u.samples >= 3, `sampled while it ran (${u.samples} samples)`);
		t.equal(u.min, 6, "never fewer than 6 running");
		const after = await inspect(lab, "n1", "sf");
		t.equal(after.value.updateStatus?.state, "completed");
		t.match(after.value.spec.task.container.image, /httpd:latest@sha256:/, "--image resolved a new digest");
		const rows = running(await ps(lab, "n1", "sf"));
		t.same(
			rows.map((r) => r.slot).sort((a, b) => a! - b!),
			[1, 2, 3, 4, 5, 6],
			"one running task per slot",
		);
		t.ok(
			rows.every((r) => r.image === after.value.spec.task.container.image),
			"all on the new image",
		);

		const rb = await lab.tsswarm("n1", ["service", "rollback", "sf"]);
		t.equal(rb.code, 0, `rollback succeeded (${rb.stderr.trim()})`);
		t.match(rb.stdout, /rollback: manually requested rollback/);
		t.match(rb.stdout, /verify: Service converged/);
		t.equal((await statusOf(lab, "sf"))?.state, "rollback_completed");
		const back = running(await ps(lab, "n1", "sf"));
		t.equal(back.length, 6);
		t.ok(
			back.every((r) => r.image === before),
			"every task runs the previous image digest again",
		);
	});

	await t.test("a stale --version is refused; the current one is taken", async (t) => {
		const cur = await inspect(lab, "n1", "sf");
		const stale = await lab.tsswarm("n1", [
			"service",
			"update",
			"--detach",
			"--version",
			String(cur.version - 1),
			"--label-add",
			"a=b",
			"sf",
		]);
		t.not(stale.code, 0, "refused");
		t.match(stale.stderr, /is at version \d+, the update expected \d+/);
		t.equal((await inspect(lab, "n1", "sf")).version, cur.version, "nothing written");
		const ok = await lab.tsswarm("n1", [
			"service",
			"update",
			"--detach",
			"--version",
			String(cur.version),
			"--label-add",
			"a=b",
			"sf",
		]);
		t.equal(ok.code, 0, `control: the current version is taken (${ok.stderr.trim()})`);
		const s = await inspect(lab, "n1", "sf");
		t.equal(s.value.specVersion, cur.value.specVersion, "a label alone makes no new task version");
		await lab.tsswarm("n1", ["service", "rm", "sf"]);
	});

	await t.test("stop-first, parallelism 2: never fewer than 4 running", async (t) => {
		await create(lab, "st", 6);
		const u = await sampled(lab, "st", [
			"--image",
			HTTPD,
			"--update-parallelism",
			"2",
			"--update-monitor",
			"1s",
			"--update-delay",
			"2s",
		]);
		t.equal(u.r.code, 0, `update succeeded (${u.r.stderr.trim()})`);
		t.ok(u.samples >= 3, `sampled while it ran (${u.samples} samples)`);
		t.ok(u.min >= 4, `never fewer than 4 running (fewest: ${u.min})`);
		t.equal(running(await ps(lab, "n1", "st")).length, 6, "6 running at the end");
		await lab.tsswarm("n1", ["service", "rm", "st"]);
	});

	await t.test("a failing health check: pause (default), continue, rollback", async (t) => {
		const health = ["--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1"];
		await Promise.all([create(lab, "hp", 2), create(lab, "hc", 2), create(lab, "hr", 2)]);
		const image = (await inspect(lab, "n1", "hr")).value.spec.task.container.image;
		const t0 = Date.now();
		let pausedAfter = 0;
		const [p, c, r] = await Promise.all([
			lab.tsswarm("n1", ["service", "update", ...health, "--update-monitor", "20s", "hp"]).finally(() => {
				pausedAfter = Date.now() - t0;
			}),
			lab.tsswarm("n1", [
				"service",
				"update",
				...health,
				"--update-failure-action",
				"continue",
				"--update-monitor",
				"2s",
				"hc",
			]),
			lab.tsswarm("n1", [
				"service",
				"update",
				...health,
				"--image",
				HTTPD,
				"--update-failure-action",
				"rollback",
				"--update-monitor",
				"20s",
				"hr",
			]),
		]);
		const ps1 = await statusOf(lab, "hp");
		t.not(p.code, 0, "pause: the update command fails");
		t.match(
			p.stderr,
			/update paused: update paused due to failure or early termination of task \w+: task is unhealthy/,
		);
		t.equal(ps1?.state, "paused");
		t.ok(pausedAfter < 20_000, `paused within the 20 s monitor window (${pausedAfter} ms)`);
		const hpRows = await ps(lab, "n1", "hp");
		t.equal(
			running(hpRows).filter((x) => x.specVersion === 1).length,
			1,
			"the slot not yet updated still runs the old version",
		);

		t.equal(c.code, 0, `continue: the update completes (${c.stderr.trim()})`);
		t.equal((await statusOf(lab, "hc"))?.state, "completed");
		const hc = await ps(lab, "n1", "hc");
		t.same(
			[...new Set(hc.filter((x) => x.specVersion === 2).map((x) => x.slot))].sort(),
			[1, 2],
			"both slots went on to the new version (the orchestrator keeps restarting the unhealthy ones)",
		);
		t.notOk(
			hc.some((x) => x.specVersion === 1 && x.desiredState === "running"),
			"no slot stayed on the old version",
		);

		t.not(r.code, 0, "rollback: the update command fails");
		t.match(r.stdout, /rollback: update rolled back due to failure or early termination of task/);
		t.match(r.stderr, /rolled back/);
		t.equal((await statusOf(lab, "hr"))?.state, "rollback_completed");
		const hr = running(await ps(lab, "n1", "hr"));
		t.ok(hr.length === 2 && hr.every((x) => x.image === image), "back on the previous image digest");
		await lab.tsswarm("n1", ["service", "rm", "hp", "hc", "hr"]);
	});

	await t.test("a task that never starts trips the progress deadline", async (t) => {
		await create(lab, "dl", 1);
		const t0 = Date.now();
		const r = await lab.tsswarm("n1", [
			"service",
			"update",
			"--constraint-add",
			"node.labels.nowhere==1",
			"--update-order",
			"start-first",
			"--update-timeout",
			"5s",
			"dl",
		]);
		const took = Date.now() - t0;
		t.not(r.code, 0, "the update fails");
		t.match(r.stderr, /task not running within 5 s \(update timeout\)/);
		t.ok(took >= 5000 && took < 30_000, `at the deadline (${took} ms)`);
		t.equal((await statusOf(lab, "dl"))?.state, "paused");
		const rows = await ps(lab, "n1", "dl");
		t.equal(running(rows).length, 1, "start-first: the old task still serves");
		t.equal(running(rows)[0]?.specVersion, 1);
		await lab.tsswarm("n1", ["service", "rm", "dl"]);
	});

	await t.test("the leader is SIGKILLed mid-update: the new leader finishes it, one task per slot", async (t) => {
		await create(lab, "lk", 6);
		const leader = await leaderName(lab, "n1");
		const other = lab.nodes.find((n) => n.name !== leader)!.name;
		t.comment(`leader ${leader}; asking ${other}`);
		const u = await lab.tsswarm(other, [
			"service",
			"update",
			"--detach",
			"--image",
			HTTPD,
			"--update-monitor",
			"1s",
			"--update-delay",
			"1s",
			"lk",
		]);
		t.equal(u.code, 0, u.stderr);
		await waitFor(
			"one slot updated",
			async () => running(await ps(lab, other, "lk")).filter((x) => x.specVersion === 2).length >= 1,
			{ timeoutMs: 60_000, intervalMs: 300 },
		);
		t.equal((await statusOf(lab, "lk", other))?.state, "updating", "killed while updating");
		t.equal(await lab.stop(leader, { kill: true }), true, "leader SIGKILLed");
		const end = await waitFor(
			"the update to finish under the new leader",
			async () => {
				const s = await statusOf(lab, "lk", other).catch(() => undefined);
				return s && s.state !== "updating" ? s : undefined;
			},
			{ timeoutMs: 120_000, intervalMs: 500 },
		);
		t.ok(["completed", "rollback_completed"].includes(end.state), `ended ${end.state}: ${end.message}`);
		const rows = await waitFor(
			"one running task in each slot",
			async () => {
				const all = await ps(lab, other, "lk");
				const live = all.filter((x) => x.desiredState === "running");
				const ok =
					running(live).length === 6 &&
					new Set(live.map((x) => x.slot)).size === live.length &&
					!live.some((x) => x.node === leader);
				return ok ? live : undefined;
			},
			{ timeoutMs: 60_000, intervalMs: 500 },
		);
		t.same(
			rows.map((x) => x.slot).sort((a, b) => a! - b!),
			[1, 2, 3, 4, 5, 6],
			"every slot served once",
		);
		t.ok(
			rows.every((x) => x.specVersion === (end.state === "completed" ? 2 : 1)),
			"all on one version",
		);
		t.notOk(
			rows.some((x) => x.node === leader),
			"nothing left on the dead node",
		);
		// The old leader back: its worker drops what it no longer has; 6 containers run in all.
		t.equal(await lab.start(leader), true, "the old leader starts again");
		const counts = await waitFor(
			"6 running containers of lk across the nodes",
			async () => {
				const m = await runningEverywhere(lab, "lk");
				return total(m) === 6 && (m.get(leader)?.length ?? 0) === 0 ? m : undefined;
			},
			{ timeoutMs: 90_000, intervalMs: 1000 },
		);
		t.equal(total(counts), 6, "no orphan container: one per slot across the cluster");
	});
});
