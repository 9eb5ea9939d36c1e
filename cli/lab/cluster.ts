// A cluster lab: agents on every node, `init` on n1 and `join` elsewhere, through the real CLI in
// each node (as a user would type it); and the failures on purpose: stop/start a node's agent,
// cut/heal its underlay. Each action is idempotent and works from any process (state on disk).
import { setTimeout as sleep } from "node:timers/promises";
import { AGENT_PORT, agentRunning, cliPath, hostPlatform, startNodeAgent, stopNodeAgent } from "./agents.ts";
import { cutUnderlay, healUnderlay, isCut } from "./cut.ts";
import { AgentStartError, LabAddressError, NotClusterLabError } from "./errors.ts";
import { execInNode, findNode, loadLab } from "./exec.ts";
import { moveAddress } from "./readdr.ts";
import { type LabNode, type LabRecord, labRoot, writeRecord } from "./state.ts";

/** At most this many nodes join as managers (Raft voters); the rest join as workers. */
export const MAX_MANAGERS = 3;

export interface NodeView {
	id: string;
	addr: string;
	state: string;
	role?: string;
	/** Leader, Reachable, Unreachable (voters), Catching up (a non-voter) or "". */
	managerStatus?: string;
	hostname?: string;
	platform?: { os: string; architecture: string; variant?: string };
}

async function tsswarm(rec: LabRecord, node: string, args: string[], signal?: AbortSignal): Promise<string> {
	const r = await execInNode(rec, node, [cliPath, ...args], { signal });
	if (r.code !== 0)
		throw new AgentStartError(`tsswarm ${args[0]} on ${node} failed: ${r.stderr.trim().split("\n").at(-1)}`);
	return r.stdout;
}

export async function nodeList(rec: LabRecord, node: string, signal?: AbortSignal): Promise<NodeView[]> {
	return JSON.parse(await tsswarm(rec, node, ["node", "ls", "--format", "json"], signal)) as NodeView[];
}

/**
 * Starts every node's agent (in parallel), inits n1, joins the rest, and waits for n1 to list them
 * all alive and every node that joined with the manager token to vote (a joining manager catches
 * up as a non-voter first; autopilot gives it the vote after the stabilization time).
 */
export async function formCluster(
	root: string,
	rec: LabRecord,
	opts: { signal?: AbortSignal; onProgress?: (m: string) => void } = {},
): Promise<void> {
	const progress = opts.onProgress ?? (() => {});
	const { signal } = opts;
	const emulated = rec.nodes.filter((n) => n.platform && n.platform !== hostPlatform()).length;
	progress(`starting ${rec.nodes.length} agents${emulated ? " (emulated ones take a while)" : ""}`);
	// Started one by one so each identity reaches the record; they then boot in parallel.
	const starting: Promise<unknown>[] = [];
	for (const n of rec.nodes) starting.push(startNodeAgent(root, rec, n, { signal }));
	const started = await Promise.allSettled(starting);
	const failed = started.find((s) => s.status === "rejected");
	if (failed) throw (failed as PromiseRejectedResult).reason;
	const [first, ...rest] = rec.nodes;
	if (!first) return;
	progress(`tsswarm init on ${first.name}`);
	// Overlay networks get their subnets from the lab's pool, as a site would pass its own.
	await tsswarm(rec, first.name, ["init", "--default-addr-pool", "198.19.0.0/16"], signal);
	const token = async (role: string) =>
		/TSWARM-1-\S+/.exec(await tsswarm(rec, first.name, ["join-token", role], signal))?.[0] ?? "";
	const managers = rec.managers ?? MAX_MANAGERS;
	const managerToken = rest.length && managers > 1 ? await token("manager") : "";
	const workerToken = rest.length >= managers ? await token("worker") : "";
	const voters = new Set([first.address]);
	for (const [i, n] of rest.entries()) {
		const manager = i + 1 < managers;
		if (manager) voters.add(n.address);
		progress(`tsswarm join on ${n.name} as a ${manager ? "manager" : "worker"}`);
		await joinWithRetry(rec, n, manager ? managerToken : workerToken, `${first.address}:${AGENT_PORT}`, signal);
	}
	const deadline = Date.now() + 60_000 + emulated * 60_000;
	let said = "";
	for (;;) {
		const view = await nodeList(rec, first.name, signal).catch(() => []);
		const alive = view.filter((v) => v.state === "alive").length;
		const voting = view.filter(
			(v) =>
				voters.has(v.addr.replace(/:\d+$/, "")) && (v.managerStatus === "Leader" || v.managerStatus === "Reachable"),
		).length;
		if (alive === rec.nodes.length && voting === voters.size) return;
		const now = `${alive} of ${rec.nodes.length} nodes alive, ${voting} of ${voters.size} managers voting`;
		if (now !== said) progress(now);
		said = now;
		if (Date.now() > deadline) throw new AgentStartError(`${first.name} lists ${now}`);
		await sleep(200);
	}
}

/**
 * A join is retried a few times: an emulated node under load can miss the joining node's grace
 * period at its first attempt; a node that did join answers the retry as already joined.
 */
async function joinWithRetry(rec: LabRecord, node: LabNode, token: string, addr: string, signal?: AbortSignal) {
	for (let attempt = 1; ; attempt++) {
		try {
			await tsswarm(rec, node.name, ["join", "--token", token, addr], signal);
			return;
		} catch (err) {
			// A node that is in the cluster lists more nodes than itself.
			if ((await nodeList(rec, node.name, signal).catch(() => [])).length > 1) return;
			if (attempt >= 3) throw err;
			await sleep(1000);
		}
	}
}

export interface NodeActionResult {
	record: LabRecord;
	/** False when the node already was in the asked state (each action is idempotent). */
	changed: boolean;
}

/** Loads the lab, finds the node (a cluster node when `needsAgent`), runs `act` on the record. */
async function onNode(
	name: string,
	node: string,
	root: string | undefined,
	needsAgent: string | undefined,
	act: (root: string, rec: LabRecord, n: LabNode) => Promise<boolean>,
): Promise<NodeActionResult> {
	const r = root ?? labRoot();
	const rec = loadLab(name, r);
	const n = findNode(rec, node);
	if (needsAgent && (!rec.cluster || !n.agent)) throw new NotClusterLabError(rec.name, `${needsAgent} on ${node}`);
	return { changed: await act(r, rec, n), record: rec };
}

/** `lab stop NODE [--kill]`: the node's agent ends; the node stays in the lab, stopped. */
export const stopNode = (name: string, node: string, opts: { kill?: boolean; root?: string } = {}) =>
	onNode(name, node, opts.root, "stop", (root, rec, n) => stopNodeAgent(root, rec, n, { kill: opts.kill }));

/**
 * `lab start NODE [--addr IP]`: the node's agent again, on the same data root (same key, same
 * cluster state); with `addr`, the node first moves to that underlay address (a DHCP renewal).
 */
export const startNode = (
	name: string,
	node: string,
	opts: { root?: string; signal?: AbortSignal; addr?: string } = {},
) =>
	onNode(name, node, opts.root, "start", async (root, rec, n) => {
		const moving = opts.addr !== undefined && opts.addr !== n.address;
		if (agentRunning(n)) {
			if (moving) throw new LabAddressError(n.name, opts.addr!, "its agent runs; lab stop it first");
			return false;
		}
		if (moving && (await moveAddress(rec, n, opts.addr!, opts.signal))) writeRecord(root, rec);
		await startNodeAgent(root, rec, n, opts);
		return true;
	});

/** `lab cut NODE`: every underlay frame to or from the node is dropped at the hub (both ways). */
export const cutNode = (name: string, node: string, opts: { root?: string } = {}) =>
	onNode(name, node, opts.root, undefined, async (root, rec, n) => {
		const changed = !(await isCut(rec, n));
		await cutUnderlay(rec, n);
		n.cut = true;
		writeRecord(root, rec);
		return changed;
	});

/** `lab heal NODE`: undoes `lab cut`. */
export const healNode = (name: string, node: string, opts: { root?: string } = {}) =>
	onNode(name, node, opts.root, undefined, async (root, rec, n) => {
		const changed = await isCut(rec, n);
		await healUnderlay(rec, n);
		delete n.cut;
		writeRecord(root, rec);
		return changed;
	});
