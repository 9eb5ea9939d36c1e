// withLab(t, {nodes}): a real lab of network namespaces for one test, torn down in t.teardown
// (pass or fail). Labs that earlier runs left behind when they were killed are swept first.
// With `cluster: true` every node runs an agent and they form one cluster; the failure actions are
// the CLI's own (`lab stop/start/cut/heal`), run in this process.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
	cliPath,
	createLab,
	cutNode,
	destroyRecord,
	execInNode,
	healNode,
	type LabNode,
	type LabRecord,
	labRoot,
	type NodeActionResult,
	type RunResult,
	readRecord,
	startNode,
	stopNode,
	sweepStaleLabs,
} from "../../cli/lab/index.ts";
import { uniqueName } from "./index.ts";

export interface Lab {
	name: string;
	record: LabRecord;
	nodes: LabNode[];
	/** The lab registry's base URL (http://198.18.0.254:5000) when started with `registry: true`. */
	registryUrl?: string;
	/** Runs argv inside a node's namespace (node name, address or "registry"); never throws on exit code. */
	exec(node: string, argv: readonly string[], opts?: { signal?: AbortSignal; input?: string }): Promise<RunResult>;
	/** `tsswarm ARGS` inside a node, talking to that node's agent; never throws on exit code. */
	tsswarm(node: string, args: readonly string[], opts?: { signal?: AbortSignal; input?: string }): Promise<RunResult>;
	/** `lab stop NODE [--kill]`: ends the node's agent (a cluster lab); false if it was not running. */
	stop(node: string, opts?: { kill?: boolean }): Promise<boolean>;
	/** `lab start NODE [--addr IP]`: its agent again on the same data root (at a new address); false if it was running. */
	start(node: string, opts?: { addr?: string }): Promise<boolean>;
	/** `lab cut NODE`: drops all its underlay traffic both ways; false if it already was cut. */
	cut(node: string): Promise<boolean>;
	/** `lab heal NODE`: undoes cut; false if it was not cut. */
	heal(node: string): Promise<boolean>;
	/** Tears the lab down now (also done automatically at teardown). */
	destroy(): Promise<void>;
}

interface Teardownable {
	teardown(fn: () => unknown): void;
	/** tap's: whether the test has failed nothing so far (a failed one keeps its agent logs). */
	passing?(): boolean;
	comment?(...m: unknown[]): void;
}

export async function withLab(
	t: Teardownable,
	opts: {
		nodes: number;
		name?: string;
		registry?: boolean;
		cluster?: boolean;
		platforms?: string[];
		/** Zone labels of the agents, round robin. */
		zones?: string[];
		/** How many nodes join with the manager token (default 3); the rest join as workers (auto). */
		managers?: number;
	},
): Promise<Lab> {
	const root = labRoot();
	await sweepStaleLabs({ root });
	const record = await createLab({
		name: opts.name ?? uniqueName("t"),
		nodes: opts.nodes,
		registry: opts.registry,
		cluster: opts.cluster,
		platforms: opts.platforms,
		zones: opts.zones,
		managers: opts.managers,
		root,
	});
	let destroyed = false;
	const destroy = async () => {
		if (destroyed) return;
		destroyed = true;
		if (t.passing && !t.passing()) keepLogs(t, record);
		// The record on disk knows the agents started since (lab.start), by identity.
		await destroyRecord(root, readRecord(root, record.name) ?? record);
	};
	t.teardown(destroy);
	const lab: Lab = {
		name: record.name,
		record,
		nodes: record.nodes,
		registryUrl: record.registry?.url,
		exec: (node, argv, o) => execInNode(lab.record, node, argv, o),
		tsswarm: (node, args, o) => execInNode(lab.record, node, [cliPath, ...args], o),
		stop: (node, o) => act(stopNode(record.name, node, { root, kill: o?.kill })),
		start: (node, o) => act(startNode(record.name, node, { root, ...(o?.addr ? { addr: o.addr } : {}) })),
		cut: (node) => act(cutNode(record.name, node, { root })),
		heal: (node) => act(healNode(record.name, node, { root })),
		destroy,
	};
	// The actions keep the record on disk; the Lab follows it (agents' identities, cut state).
	const act = async (p: Promise<NodeActionResult>) => {
		const r = await p;
		lab.record = r.record;
		lab.nodes = r.record.nodes;
		return r.changed;
	};
	return lab;
}

/** A failed test's agent logs outlive its lab (which teardown deletes): copied, and named in a comment. */
function keepLogs(t: Teardownable, record: LabRecord): void {
	const dir = join(tmpdir(), "tsswarm-failed-labs", record.name);
	mkdirSync(dir, { recursive: true });
	for (const n of record.nodes) {
		const log = join(n.dir, "agent.log");
		if (existsSync(log)) copyFileSync(log, join(dir, `${n.name}.log`));
	}
	t.comment?.(`agent logs of the failed lab ${record.name}: ${dir}`);
}
