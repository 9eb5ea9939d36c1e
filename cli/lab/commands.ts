// The actions behind `tsswarm lab ...`: thin wrappers that print for humans.
import { CommandError } from "../errors.ts";
import { printTable } from "../table.ts";
import { cutNode, healNode, startNode, stopNode } from "./cluster.ts";
import { createLab } from "./create.ts";
import { destroyLab, sweepStaleLabs } from "./destroy.ts";
import { LabError } from "./errors.ts";
import { execInteractive, loadLab } from "./exec.ts";
import { withInterrupts } from "./interrupt.ts";
import { listLabs } from "./list.ts";
import type { LabRecord } from "./state.ts";

const say = (msg: string) => process.stderr.write(`${msg}\n`);

function requireRoot(): void {
	if (process.getuid?.() !== 0) throw new CommandError("the lab needs root (network namespaces)", "ERR_NOT_ROOT");
}

export function describeLab(rec: LabRecord): string {
	const lines = [
		`lab "${rec.name}": ${rec.nodes.length} node(s) on 198.18.0.0/16${rec.cluster ? ", one cluster (agents on every node)" : ""}`,
	];
	for (const n of rec.nodes) {
		const talk = rec.cluster ? "tsswarm node ls" : "sh";
		const extra = rec.cluster
			? `${n.platform}, agent ${n.agent?.state ?? "-"}, log ${n.dir}/agent.log`
			: `data: ${n.dir}`;
		lines.push(
			`  ${n.name}  ${n.address.padEnd(14)} tsswarm lab exec --name ${rec.name} ${n.name} -- ${talk}   (${extra})`,
		);
	}
	if (rec.cluster) {
		lines.push(`  failures: tsswarm lab stop|start|cut|heal --name ${rec.name} NODE   (stop --kill sends SIGKILL)`);
	}
	if (rec.registry) lines.push(`  registry ${rec.registry.url}  (images: busybox:latest, httpd:latest)`);
	return lines.join("\n");
}

export async function labUp(o: {
	nodes: number;
	name: string;
	registry: boolean;
	cluster?: boolean;
	platforms?: string[];
}): Promise<void> {
	requireRoot();
	const rec = await withInterrupts((signal) =>
		createLab({ ...o, persistent: true, signal, onProgress: (m) => say(`lab ${o.name}: ${m}`) }),
	);
	process.stdout.write(`${describeLab(rec)}\nremove it with: tsswarm lab down --name ${rec.name}\n`);
}

export function labLs(o: { json?: boolean }): void {
	const labs = listLabs();
	if (o.json) {
		process.stdout.write(`${JSON.stringify(labs)}\n`);
		return;
	}
	const rows = [["NAME", "STATUS", "NODES", "AGENTS", "PLATFORMS", "CUT", "REGISTRY", "NOTE"]];
	for (const l of labs) {
		const note = l.error ?? (l.stale ? "stale: its owner died; the next lab command sweeps it" : "");
		const d = l.nodeDetails ?? [];
		const agents = d.filter((n) => n.agent).length
			? `${d.filter((n) => n.agent === "running").length}/${d.length} running`
			: "-";
		const platforms = d.some((n) => n.platform)
			? d.map((n) => `${n.name}=${(n.platform ?? "-").replace(/^linux\//, "")}`).join(",")
			: "-";
		const cut =
			d
				.filter((n) => n.cut)
				.map((n) => n.name)
				.join(",") || "-";
		rows.push([l.name, l.status, String(l.nodes), agents, platforms, cut, l.registry ?? "-", note]);
	}
	printTable(rows, "  ");
}

export async function labExec(name: string, node: string, cmd: string[]): Promise<number> {
	requireRoot();
	if (cmd[0] === "--") cmd = cmd.slice(1);
	if (cmd.length === 0) throw new CommandError("lab exec needs a command after the node name");
	return execInteractive(loadLab(name), node, cmd);
}

export async function labDown(o: { name: string; all?: boolean }): Promise<void> {
	requireRoot();
	const swept = await sweepStaleLabs();
	for (const s of swept) say(`swept lab ${s} (left by a run that died)`);
	const names = o.all ? listLabs().map((l) => l.name) : [o.name];
	for (const name of names) {
		try {
			await destroyLab(name);
			say(`lab ${name} removed`);
		} catch (err) {
			// Asking to remove a lab the sweep just removed is not a failure.
			if (err instanceof LabError && err.code === "ERR_LAB_NOT_FOUND" && (swept.includes(name) || o.all)) continue;
			throw err;
		}
	}
}

const ACTIONS = {
	stop: { run: stopNode, done: "agent stopped", noop: "agent already stopped" },
	start: { run: startNode, done: "agent started (same data root and identity)", noop: "agent already running" },
	cut: { run: cutNode, done: "underlay cut (all its traffic dropped)", noop: "already cut" },
	heal: { run: healNode, done: "underlay healed", noop: "was not cut" },
} as const;

/** `lab stop|start|cut|heal NODE`; saying whether it changed anything (each is idempotent). */
export async function labNodeAction(
	action: keyof typeof ACTIONS,
	o: { name: string; node: string; kill?: boolean; addr?: string },
): Promise<void> {
	requireRoot();
	const a = ACTIONS[action];
	const r = await withInterrupts((signal) => a.run(o.name, o.node, { kill: o.kill, signal, addr: o.addr }));
	const moved = o.addr ? ` at ${o.addr}` : "";
	say(`${o.node}: ${r.changed ? (o.kill ? "agent killed" : `${a.done}${moved}`) : a.noop}`);
}
