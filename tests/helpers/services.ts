// What the service lab tests read from a cluster lab: `service ps/ls` rows straight from a node's
// API socket (the rows the CLI prints; polling through a CLI process per look is too slow on a
// loaded machine), and `tsswarm ps -a --format json` on each node (it reads the node's runtime
// directly, so it answers also while that node's agent is down or cut); and a task's view of the
// services (names through its resolver, pages through a VIP).
import { call } from "../../agent/api/index.ts";
import { waitFor } from "./index.ts";
import type { Lab } from "./lab.ts";

export const BUSYBOX = "198.18.0.254:5000/busybox:latest";

export interface TaskRow {
	id: string;
	name: string;
	slot?: number;
	nodeId?: string;
	node: string;
	platform: string;
	desiredState: string;
	state: string;
	error: string;
}

export interface ServiceRow {
	id: string;
	name: string;
	mode: string;
	running: number;
	desired: number;
}

export interface ContainerRow {
	id: string;
	name: string;
	status: string;
	spec: { labels?: Record<string, string> };
}

/** `tsswarm ARGS` on a node; throws with its stderr when it exits non-zero. */
export async function cli(lab: Lab, on: string, args: string[]): Promise<string> {
	const r = await lab.tsswarm(on, args);
	if (r.code !== 0) throw new Error(`tsswarm ${args.join(" ")} on ${on}: exit ${r.code}: ${r.stderr.trim()}`);
	return r.stdout;
}

const dataRoot = (lab: Lab, on: string) => {
	const n = lab.nodes.find((x) => x.name === on);
	if (!n) throw new Error(`no node ${on} in lab ${lab.name}`);
	return n.dir;
};

/** `service ps SVC --format json` on node `on`. */
export function servicePs(lab: Lab, on: string, svc: string): Promise<TaskRow[]> {
	return call<TaskRow[]>(dataRoot(lab, on), "POST", "/v1/services/ps", { ref: svc }, 10_000);
}

/** `service ls --format json` on node `on`. */
export function serviceLs(lab: Lab, on: string): Promise<ServiceRow[]> {
	return call<ServiceRow[]>(dataRoot(lab, on), "GET", "/v1/services", undefined, 10_000);
}

/** `node ls --format json` on node `on`. */
export function nodeLs(
	lab: Lab,
	on: string,
): Promise<Array<{ id: string; addr: string; state: string; managerStatus?: string }>> {
	return call(dataRoot(lab, on), "GET", "/v1/nodes", undefined, 10_000);
}

/** Tasks wanted and running (what `REPLICAS n/m` counts). */
export const liveRunning = (rows: TaskRow[]) =>
	rows.filter((r) => r.desiredState === "running" && r.state === "running");

/** The containers of a service on one node (any state unless running is asked). */
export async function containersOn(lab: Lab, node: string, svc: string, o: { running?: boolean } = {}) {
	const all = JSON.parse(await cli(lab, node, ["ps", "-a", "--format", "json"])) as ContainerRow[];
	return all.filter(
		(c) => c.spec.labels?.["com.docker.swarm.service.name"] === svc && (!o.running || c.status === "running"),
	);
}

/** Running containers of a service on every node of the lab, by node name. */
export async function runningEverywhere(lab: Lab, svc: string): Promise<Map<string, ContainerRow[]>> {
	const out = new Map<string, ContainerRow[]>();
	for (const n of lab.nodes) out.set(n.name, await containersOn(lab, n.name, svc, { running: true }));
	return out;
}

export const total = (m: Map<string, unknown[]>) => [...m.values()].reduce((a, l) => a + l.length, 0);

/** Waits until `service ps` on `on` satisfies `ok`; returns those rows. */
export function waitPs(
	lab: Lab,
	on: string,
	svc: string,
	what: string,
	ok: (rows: TaskRow[]) => boolean,
	timeoutMs = 60_000,
): Promise<TaskRow[]> {
	return waitFor(
		`${svc}: ${what}`,
		async () => {
			const rows = await servicePs(lab, on, svc);
			return ok(rows) ? rows : undefined;
		},
		{ timeoutMs, intervalMs: 500 },
	);
}

/** The node name of the Raft leader as `node ls` on `on` says. */
export async function leaderName(lab: Lab, on: string): Promise<string> {
	const view = await nodeLs(lab, on);
	const l = view.find((v) => v.managerStatus?.toLowerCase() === "leader");
	if (!l) throw new Error(`no leader in node ls on ${on}: ${JSON.stringify(view)}`);
	const node = lab.nodes.find((n) => l.addr.startsWith(`${n.address}:`));
	if (!node) throw new Error(`leader ${l.addr} is no lab node`);
	return node.name;
}

/** Waits until `on` lists every lab node alive. */
export async function allAlive(lab: Lab, on: string): Promise<void> {
	await waitFor(
		`${on} to see every node alive`,
		async () => {
			const v = await nodeLs(lab, on);
			return v.length === lab.nodes.length && v.every((n) => n.state === "alive");
		},
		{ timeoutMs: 60_000, intervalMs: 500 },
	);
}

/** The count of running containers of `svc` across the nodes over `ms`, each count seen once (no late duplicate). */
export async function holds(lab: Lab, svc: string, ms = 3000): Promise<number[]> {
	const until = Date.now() + ms;
	const seen = new Set<number>();
	do seen.add(total(await runningEverywhere(lab, svc)));
	while (Date.now() < until);
	return [...seen];
}

/** `service create --name NAME --replicas N` of busybox sleeping, quick to stop (1 s grace); waits for it to converge. */
export async function createSleepers(lab: Lab, name: string, replicas: number): Promise<void> {
	await cli(lab, "n1", [
		"service",
		"create",
		"--quiet",
		"--name",
		name,
		"--replicas",
		String(replicas),
		"--stop-grace-period",
		"1s",
		BUSYBOX,
		"sleep",
		"3600",
	]);
}

// Asking services from inside a task, as a client would: names through the task's resolver
// (busybox nslookup) and pages through a service's VIP (the httpd test image says its hostname).

/** Runs a shell command inside the task (a container exec), giving its stdout. */
export type InTask = (cmd: string) => Promise<{ stdout: string }>;

/** The addresses `name` resolves to in the task, sorted; undefined when it does not resolve. */
export async function resolveIn(run: InTask, name: string): Promise<string[] | undefined> {
	const r = await run(`nslookup ${name}`);
	// The answers come after the server's own address lines.
	return r.stdout
		.split(/\n\s*\n/)
		.slice(1)
		.join("\n")
		.match(/\d+\.\d+\.\d+\.\d+/g)
		?.sort();
}

/** The hostnames `n` requests to `url` reached, one by one ("failed" for a request that got none). */
export async function hostsVia(run: InTask, url: string, n: number): Promise<string[]> {
	const seen: string[] = [];
	for (let i = 0; i < n; i++) {
		const r = await run(`timeout 3 wget -q -O- ${url}`);
		seen.push(/hello from (\w+)/.exec(r.stdout)?.[1] ?? "failed");
	}
	return seen;
}
