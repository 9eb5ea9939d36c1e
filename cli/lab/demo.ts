// `tsswarm lab demo` (what `npm run demo` runs): the cluster demo. Three nodes (one of them a real
// linux/arm64 agent under qemu) form a cluster; a multi-arch web service with 3 replicas is
// published on 8080 and answers on every node; a node running a replica is killed and the replica
// runs elsewhere again; then everything is torn down.

import { stopNode } from "./cluster.ts";
import { describeLab } from "./commands.ts";
import { createLab } from "./create.ts";
import { destroyRecord } from "./destroy.ts";
import { execInNode } from "./exec.ts";
import { withInterrupts } from "./interrupt.ts";
import { type LabRecord, labRoot, writeRecord } from "./state.ts";

const say = (msg: string) => process.stdout.write(`${msg}\n`);
const cli = new URL("../tsswarm", import.meta.url).pathname;

interface TaskRow {
	id: string;
	name: string;
	slot?: number;
	nodeId?: string;
	node: string;
	platform: string;
	desiredState: string;
	state: string;
}

export async function labDemo(o: { nodes: number; name: string; keep: boolean }): Promise<void> {
	if (process.getuid?.() !== 0) throw new Error("the lab demo needs root (network namespaces)");
	const root = labRoot();
	await withInterrupts(async (signal) => {
		const t0 = performance.now();
		const rec = await createLab({
			name: o.name,
			nodes: Math.max(3, o.nodes),
			registry: true,
			cluster: true,
			// n2 runs the arm64 build of the agent through qemu-user: it reports linux/arm64 and runs
			// arm64 containers, as a Raspberry Pi would.
			platforms: ["linux/amd64", "linux/arm64"],
			signal,
			onProgress: (m) => say(`[lab ${o.name}] ${m}`),
		});
		try {
			say(`[lab ${o.name}] cluster up in ${Math.round(performance.now() - t0)} ms`);
			say(describeLab(rec));
			await showService(rec, signal);
			if (o.keep) {
				writeRecord(root, { ...rec, persistent: true });
				say(`\nleft up (--keep). Remove it with: tsswarm lab down --name ${rec.name}`);
				return;
			}
		} catch (err) {
			await destroyRecord(root, rec, 0);
			throw err;
		}
		const t1 = performance.now();
		await destroyRecord(root, rec);
		say(`\n[lab ${o.name}] torn down in ${Math.round(performance.now() - t1)} ms; nothing left behind`);
	});
}

async function tsswarm(rec: LabRecord, on: string, args: string[], signal: AbortSignal): Promise<string> {
	const r = await execInNode(rec, on, [cli, ...args], { signal });
	if (r.code !== 0) throw new Error(`tsswarm ${args.join(" ")} on ${on} failed: ${r.stderr.trim().split("\n").at(-1)}`);
	return r.stdout;
}

const indent = (text: string) =>
	text
		.trimEnd()
		.split("\n")
		.map((l) => `  ${l}`)
		.join("\n");

async function until<T>(
	what: string,
	ms: number,
	signal: AbortSignal,
	probe: () => Promise<T | undefined>,
): Promise<T> {
	const deadline = Date.now() + ms;
	for (;;) {
		signal.throwIfAborted();
		const v = await probe().catch(() => undefined);
		if (v !== undefined) return v;
		if (Date.now() > deadline) throw new Error(`${what}: not within ${Math.round(ms / 1000)} s`);
		await new Promise((r) => setTimeout(r, 250));
	}
}

async function fetchPage(rec: LabRecord, from: string, url: string, signal: AbortSignal): Promise<string | undefined> {
	const r = await execInNode(rec, from, ["curl", "-fsS", "--max-time", "3", url], { signal });
	return r.code === 0 ? r.stdout.replace(/<[^>]+>/g, "").trim() : undefined;
}

async function showService(rec: LabRecord, signal: AbortSignal): Promise<void> {
	const n1 = rec.nodes[0]!.name;
	say(`\ntsswarm node ls on ${n1}:`);
	say(indent(await tsswarm(rec, n1, ["node", "ls"], signal)));
	const image = `${rec.registry!.address}:${rec.registry!.port}/httpd:latest`;
	const args = ["service", "create", "--name", "web", "--replicas", "3", "--publish", "8080:80", image];
	say(`\ntsswarm ${args.join(" ")}   (on ${n1}; the image is an index over amd64, arm64 and arm/v7)`);
	const t0 = performance.now();
	say(indent(await tsswarm(rec, n1, args, signal)));
	say(`  (${Math.round(performance.now() - t0)} ms, the pulls on three nodes included)`);
	const ps = async () =>
		(JSON.parse(await tsswarm(rec, n1, ["service", "ps", "web", "--format", "json"], signal)) as TaskRow[]).filter(
			(t) => t.desiredState === "running",
		);
	say(`\ntsswarm service ps web: a replica per node, each on its node's platform`);
	say(indent(await tsswarm(rec, n1, ["service", "ps", "web"], signal)));

	say("\nthe routing mesh: port 8080 answers on every node, whichever runs the replica that serves it:");
	for (const n of rec.nodes) {
		const url = `http://${n.address}:8080/`;
		const page = await until(`${url} from ${n1}`, 30_000, signal, () => fetchPage(rec, n1, url, signal));
		say(`  curl ${url.padEnd(26)} -> ${page}`);
	}

	const victim = (await ps()).find((t) => t.node && t.node !== n1)!;
	say(`\nSIGKILL of ${victim.node}'s agent (it runs ${victim.name}); the others mark it down and the replica moves:`);
	const t1 = performance.now();
	await stopNode(rec.name, victim.node, { kill: true });
	const moved = await until(`${victim.name} running elsewhere`, 60_000, signal, async () => {
		const live = await ps();
		const t = live.find((x) => x.slot === victim.slot && x.node !== victim.node && x.state === "running");
		return t && live.filter((x) => x.state === "running").length === 3 ? t : undefined;
	});
	say(
		`  ${moved.name} runs on ${moved.node} (${moved.platform}) ${Math.round(performance.now() - t1)} ms after the kill`,
	);
	say(indent(await tsswarm(rec, n1, ["service", "ps", "web"], signal)));
	const url = `http://${rec.nodes[0]!.address}:8080/`;
	say(`  curl ${url} -> ${await until(url, 30_000, signal, () => fetchPage(rec, n1, url, signal))}`);
}
