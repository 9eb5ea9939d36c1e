// Fixtures of the dispatch tests: real libp2p hosts on 127.0.0.1, a real single-node ClusterStore
// (or two, for a follower), node and task records, and a recording AssignmentSink.
import { EventEmitter } from "node:events";
import { join } from "node:path";
import { multiaddr } from "@multiformats/multiaddr";
import { pack, unpack } from "msgpackr";
import {
	type Assignment,
	type AssignmentSink,
	DISPATCH_PROTOCOL,
	DispatcherClient,
	type StatusReport,
} from "../../../agent/dispatch/index.ts";
import { Host, MemoryAllowList } from "../../../agent/host/index.ts";
import {
	DispatchEndpoint,
	Dispatcher,
	type DispatcherOptions,
	type DispatchStore,
} from "../../../agent/manager/index.ts";
import type { NodeRecord } from "../../../agent/nodes/index.ts";
import { type Task, type TaskState, validateServiceSpec } from "../../../agent/services/index.ts";
import { ClusterStore, type Network, type Op, type TableTypes } from "../../../agent/store/index.ts";
import { tempDir } from "../../helpers/index.ts";
import { net } from "../store/fixtures.ts";

export type Tap = { teardown(fn: () => unknown): void };

const noop = (_o: object, _m?: string) => {};
export const quiet = { info: noop, warn: noop, error: noop, debug: noop };

export interface TestHost {
	h: Host;
	allow: MemoryAllowList;
	addr: string;
	refused: Array<{ peer: string; protocol: string; code?: string; name: string; message: string }>;
}

export async function host(t: Tap): Promise<TestHost> {
	const d = tempDir("tsswarm-dispatch-");
	t.teardown(d.remove);
	const allow = new MemoryAllowList();
	const h = await Host.create({ dataDir: d.path, listen: ["/ip4/127.0.0.1/tcp/0"], allowList: allow, logger: quiet });
	t.teardown(() => h.stop());
	const m = /^\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(h.addrs()[0]!)!;
	const refused: TestHost["refused"] = [];
	h.on("refused", ({ peer, protocol, error }) =>
		refused.push({ peer, protocol, code: error.code, name: error.name, message: error.message }),
	);
	return { h, allow, addr: `${m[1]}:${m[2]}`, refused };
}

/** Every host admits every other one (the allow-list a store's nodes table gives). */
export function meet(...hosts: TestHost[]): void {
	for (const a of hosts) for (const b of hosts) if (a !== b) a.allow.add(b.h.peerId);
}

export async function openStore(t: Tap, m: TestHost, o: { bootstrap: boolean }): Promise<ClusterStore> {
	const d = tempDir("tsswarm-dispatch-raft-");
	t.teardown(d.remove);
	const store = await ClusterStore.open({ dir: join(d.path, "raft"), node: m.h.node, clusterId: "c1", logger: quiet });
	if (o.bootstrap) await store.bootstrap();
	await store.start();
	t.teardown(() => store.stop());
	if (o.bootstrap) await store.waitForLeader(10_000);
	return store;
}

/** A manager with a one-node store and `workers` worker hosts, each with its node record. */
export async function cluster(t: Tap, workers: number) {
	const m = await host(t);
	const ws: TestHost[] = [];
	for (let i = 0; i < workers; i++) ws.push(await host(t));
	meet(m, ...ws);
	const store = await openStore(t, m, { bootstrap: true });
	for (const w of ws) await put(store, "nodes", w.h.peerId, nodeRec(w, "worker"));
	// Destructured as [w1, w2]: as many hosts as asked for.
	return { m, ws: ws as TestHost[] & [TestHost, TestHost], store };
}

export function nodeRec(h: TestHost, role: "manager" | "worker"): NodeRecord {
	return {
		id: h.h.peerId,
		hostname: `n-${h.h.peerId.slice(-6)}`,
		addr: h.addr,
		role,
		availability: "active",
		labels: {},
		platform: { os: "linux", architecture: "amd64" },
		resources: { nanoCpus: 1e9, memoryBytes: 1 << 30 },
		engineVersion: "0.0.0",
		createdAt: new Date().toISOString(),
	};
}

let seq = 0;
export function task(nodeId: string, o: Partial<Task> = {}): Task {
	const id = o.id ?? `task${++seq}x${Math.random().toString(36).slice(2, 8)}`;
	return {
		id,
		serviceId: "svc1",
		serviceName: "web",
		slot: seq,
		nodeId,
		specVersion: 1,
		spec: template(),
		image: "busybox@sha256:00",
		desiredState: "running",
		status: status("assigned"),
		networks: [],
		createdAt: new Date().toISOString(),
		...o,
	};
}

export const status = (state: TaskState, message: string = state) => ({
	state,
	message,
	timestamp: new Date().toISOString(),
});

export async function put<T extends "nodes" | "tasks" | "networks">(
	store: ClusterStore,
	table: T,
	id: string,
	value: TableTypes[T],
) {
	const cur = store.get(table, id);
	const op = cur ? { op: "update", table, id, version: cur.version, value } : { op: "create", table, id, value };
	await store.commit([op as Op]);
}

export async function del(store: ClusterStore, table: "tasks", id: string) {
	await store.commit([{ op: "delete", table, id }]);
}

/** A network record as the leader allocates it. */
export const network = (id: string, o: Partial<Network> = {}): Network => net(id, `net-${id}`, { vni: 4097, ...o });

/** A valid task template (the store checks every task it is given). */
export const template = (container: Record<string, unknown> = {}) =>
	validateServiceSpec({ name: "t", task: { container: { image: "busybox:latest", ...container } } }).task;

export const storedTask = (store: ClusterStore, id: string) => store.get("tasks", id)?.value as unknown as Task;

/** Records what the client hands it; `report()` plays the worker's batched status event. */
export class RecordingSink extends EventEmitter<{ status: [StatusReport[]] }> implements AssignmentSink {
	readonly got: Assignment[] = [];
	readonly connected: boolean[] = [];
	/** Task ids the worker has, as the assignments built them. */
	readonly tasks = new Map<string, Task>();

	assign(a: Assignment): void {
		this.got.push(a);
		if (a.full) this.tasks.clear();
		for (const t of a.tasks) this.tasks.set(t.id, t);
		for (const id of a.removed) this.tasks.delete(id);
	}

	setConnected(c: boolean): void {
		this.connected.push(c);
	}

	get isConnected(): boolean {
		return this.connected.at(-1) === true;
	}

	fulls(): Assignment[] {
		return this.got.filter((a) => a.full);
	}

	report(reports: StatusReport[]): void {
		this.emit("status", reports);
	}
}

export async function endpoint(t: Tap, m: TestHost, store: ClusterStore | DispatchStore): Promise<DispatchEndpoint> {
	const e = new DispatchEndpoint({ host: m.h, store, logger: quiet });
	await e.start();
	t.teardown(() => e.stop());
	return e;
}

export async function dispatcher(
	t: Tap,
	e: DispatchEndpoint,
	o: Partial<DispatcherOptions> = {},
): Promise<{ d: Dispatcher; stop: () => void }> {
	const ctl = new AbortController();
	const d = new Dispatcher({ endpoint: e, logger: quiet, ...o });
	await d.start(ctl.signal);
	t.teardown(() => ctl.abort());
	return { d, stop: () => ctl.abort() };
}

export function client(
	t: Tap,
	w: TestHost,
	managers: TestHost[],
	o: Partial<ConstructorParameters<typeof DispatcherClient>[0]> = {},
): { c: DispatcherClient; sink: RecordingSink } {
	const sink = new RecordingSink();
	const c = new DispatcherClient({
		host: w.h,
		directory: { managers: () => managers.map((m) => ({ id: m.h.peerId, addr: m.addr })) },
		sink,
		logger: quiet,
		backoffMinMs: 50,
		backoffMaxMs: 500,
		...o,
	});
	c.start();
	t.teardown(() => c.stop());
	return { c, sink };
}

/** Open a raw stream from `from` to `to` on the dispatch protocol; returns send/next over frames. */
export async function raw(from: TestHost, to: TestHost) {
	const conn = await from.h.node.dial(multiaddr(to.h.addrs()[0]!));
	const stream = await conn.newStream(DISPATCH_PROTOCOL);
	const frames: unknown[] = [];
	let buf = Buffer.alloc(0);
	stream.addEventListener("message", (evt) => {
		buf = Buffer.concat([buf, Buffer.from(evt.data.subarray())]);
		while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
			const len = buf.readUInt32BE(0);
			frames.push(unpack(buf.subarray(4, 4 + len)));
			buf = buf.subarray(4 + len);
		}
	});
	return {
		frames,
		bytes: (b: Uint8Array) => stream.send(b),
		send: (v: unknown) => {
			const body = pack(v);
			const b = Buffer.alloc(4 + body.length);
			b.writeUInt32BE(body.length, 0);
			body.copy(b, 4);
			stream.send(b);
		},
		stream,
	};
}
