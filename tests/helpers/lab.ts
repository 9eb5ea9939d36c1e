// withLab(t, {nodes}): a real lab of network namespaces for one test, torn down in t.teardown
// (pass or fail). Labs that earlier runs left behind when they were killed are swept first.
import {
	createLab,
	destroyRecord,
	execInNode,
	type LabNode,
	type LabRecord,
	labRoot,
	type RunResult,
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
	/** Tears the lab down now (also done automatically at teardown). */
	destroy(): Promise<void>;
}

interface Teardownable {
	teardown(fn: () => unknown): void;
}

export async function withLab(
	t: Teardownable,
	opts: { nodes: number; name?: string; registry?: boolean },
): Promise<Lab> {
	const root = labRoot();
	await sweepStaleLabs({ root });
	const record = await createLab({
		name: opts.name ?? uniqueName("t"),
		nodes: opts.nodes,
		registry: opts.registry,
		root,
	});
	let destroyed = false;
	const destroy = async () => {
		if (destroyed) return;
		destroyed = true;
		await destroyRecord(root, record);
	};
	t.teardown(destroy);
	return {
		name: record.name,
		record,
		nodes: record.nodes,
		registryUrl: record.registry?.url,
		exec: (node, argv, o) => execInNode(record, node, argv, o),
		destroy,
	};
}
