// The spread: swarmkit's decision tree. One level per `placement.preferences` entry (spread=
// node.labels.zone, then e.g. node.labels.rack), a branch per label value (a node without the
// label is under ""), nodes at the leaves. Each next task goes down the branch with the fewest
// tasks of the service (counting every node's, as swarmkit does), then to the leaf node that is
// least loaded: fewest tasks of the service, then fewest tasks in all (swarmkit's nodeLess).

import { ENGINE_LABEL_PREFIX, NODE_LABEL_PREFIX } from "./constraint.ts";
import { Heap } from "./heap.ts";
import type { NodeInfo } from "./node-info.ts";
import type { SchedNode, SpreadPreference } from "./types.ts";

class Branch {
	readonly key: string;
	readonly parent: Branch | undefined;
	/** Tasks of the service on every node under this branch. */
	tasks = 0;
	/** Position in the parent's heap of live children; -1 when out of it. */
	heapIndex = -1;
	children: Map<string, Branch> | undefined;
	childHeap: Heap<Branch> | undefined;
	/** At a leaf: the nodes that passed the filters, then their heap. */
	candidates: NodeInfo[] = [];
	nodeHeap: Heap<NodeInfo> | undefined;

	constructor(key: string, parent: Branch | undefined) {
		this.key = key;
		this.parent = parent;
	}

	get live(): boolean {
		return ((this.children ? this.childHeap?.size : this.nodeHeap?.size) ?? 0) > 0;
	}

	child(key: string): Branch {
		this.children ??= new Map();
		let c = this.children.get(key);
		if (!c) {
			c = new Branch(key, this);
			this.children.set(key, c);
		}
		return c;
	}
}

/** The value a spread descriptor gives a node; undefined when the descriptor is not one we spread on. */
export function spreadValue(descriptor: string, node: SchedNode): string | undefined {
	const l = compileSpread(descriptor);
	if (!l) return undefined;
	return (l.engine ? node.engineLabels : node.labels)?.[l.label] ?? "";
}

function compileSpread(descriptor: string): { engine: boolean; label: string } | undefined {
	if (typeof descriptor !== "string") return undefined;
	const lower = descriptor.toLowerCase();
	if (lower.startsWith(NODE_LABEL_PREFIX) && descriptor.length > NODE_LABEL_PREFIX.length) {
		return { engine: false, label: descriptor.slice(NODE_LABEL_PREFIX.length) };
	}
	if (lower.startsWith(ENGINE_LABEL_PREFIX) && descriptor.length > ENGINE_LABEL_PREFIX.length) {
		return { engine: true, label: descriptor.slice(ENGINE_LABEL_PREFIX.length) };
	}
	return undefined;
}

// Fewest tasks of the group's service (NodeInfo.groupTasks), then fewest in all, then oldest.
const nodeLess = (a: NodeInfo, b: NodeInfo) => {
	if (a.groupTasks !== b.groupTasks) return a.groupTasks < b.groupTasks;
	if (a.activeTasks !== b.activeTasks) return a.activeTasks < b.activeTasks;
	return a.seq < b.seq;
};

const branchLess = (a: Branch, b: Branch) => a.tasks < b.tasks || (a.tasks === b.tasks && a.key < b.key);
const placeBranch = (b: Branch, i: number) => {
	b.heapIndex = i;
};

export class SpreadTree {
	readonly #root = new Branch("", undefined);
	#leaf: Branch | undefined;

	/** `accept` runs the filters: only the nodes it accepts are candidates, every node counts. */
	constructor(
		nodes: Iterable<NodeInfo>,
		serviceId: string,
		preferences: readonly SpreadPreference[],
		accept: (n: NodeInfo) => boolean,
	) {
		const levels = preferences.map((p) => compileSpread(p.spread)).filter((l) => l !== undefined);
		for (const n of nodes) {
			const own = n.serviceTasks(serviceId);
			n.groupTasks = own;
			let b = this.#root;
			for (const l of levels) {
				b.tasks += own;
				b = b.child((l.engine ? n.node.engineLabels : n.node.labels)?.[l.label] ?? "");
			}
			b.tasks += own;
			if (accept(n)) b.candidates.push(n);
		}
		const finish = (b: Branch): void => {
			if (!b.children) {
				b.nodeHeap = new Heap(b.candidates, nodeLess);
				b.candidates = [];
				return;
			}
			const live: Branch[] = [];
			for (const c of b.children.values()) {
				finish(c);
				if (c.live) live.push(c);
			}
			b.childHeap = new Heap(live, branchLess, placeBranch);
		};
		finish(this.#root);
	}

	/** The node the next task should go to, or undefined when no candidate is left. */
	next(): NodeInfo | undefined {
		let b = this.#root;
		while (b.childHeap) {
			const c = b.childHeap.peek();
			if (!c) return undefined;
			b = c;
		}
		this.#leaf = b;
		return b.nodeHeap?.peek();
	}

	/**
	 * A task of the service went to the node next() returned (its accounting already updated);
	 * `stillFits`: whether that node passes the filters for the next equal task.
	 */
	placed(stillFits: boolean): void {
		const leaf = this.#leaf;
		if (!leaf?.nodeHeap) return;
		this.#leaf = undefined;
		const top = leaf.nodeHeap.peek();
		if (top) top.groupTasks++;
		if (stillFits) leaf.nodeHeap.fix(0);
		else leaf.nodeHeap.pop();
		for (let b: Branch = leaf; ; ) {
			b.tasks++;
			const parent = b.parent;
			if (!parent?.childHeap) return;
			if (b.live) parent.childHeap.fix(b.heapIndex);
			else parent.childHeap.removeAt(b.heapIndex);
			b = parent;
		}
	}
}
