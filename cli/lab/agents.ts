// The agents of a cluster lab: one detached `tsswarm agent` per node, in the node's namespace, with
// the node's dir as its data root, recorded by identity so `lab stop`, `lab down` and sweeps end it.
// A node of a foreign platform (linux/arm64 on x86) runs its agent under that platform's Node
// through qemu-user, so it really is an arm64 process: it reports arm64 and pulls arm64 images.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { socketPath } from "../../agent/api/index.ts";
import { AgentStartError, ForeignNodeMissingError, NotClusterLabError, UnsupportedPlatformError } from "./errors.ts";
import { labNodeEnv, netnsArgv } from "./exec.ts";
import { identify, isRunning, type LabNode, type LabRecord, type ProcessIdentity, writeRecord } from "./state.ts";

const repo = new URL("../..", import.meta.url).pathname;
export const cliPath = join(repo, "cli/tsswarm");
export const AGENT_PORT = 2377;

/** This machine's platform as a lab writes it (linux/amd64, linux/arm64). */
export function hostPlatform(): string {
	return process.arch === "x64" ? "linux/amd64" : `linux/${process.arch}`;
}

/**
 * Where the linux/arm64 Node of the pinned version lives on an x86 host: the one the release
 * build uses (scripts/release/build.ts nodeBinary; scripts/bootstrap.sh fetches it).
 */
export const foreignNodePath = (platform: string) =>
	join(
		process.env.TSSWARM_RELEASE_CACHE ?? join(repo, ".cache", "release"),
		`node-linux-${platform.split("/")[1]}-${process.versions.node}`,
		"package",
		"bin",
		"node",
	);

/** The platforms a node can have here: the host's own, and linux/arm64 through qemu on x86. */
export function supportedPlatforms(): string[] {
	return process.arch === "x64" ? ["linux/amd64", "linux/arm64"] : [hostPlatform()];
}

/** Normalizes and checks `--platforms` entries (linux/arm64/v8 is linux/arm64). */
export function parsePlatform(p: string): string {
	const norm = p
		.trim()
		.toLowerCase()
		.replace(/^linux\/arm64\/v8$/, "linux/arm64");
	if (!supportedPlatforms().includes(norm)) throw new UnsupportedPlatformError(p, supportedPlatforms());
	return norm;
}

/** Round robin over `platforms` (default: the host's) for nodes 1..count. */
export function assignPlatforms(count: number, platforms: readonly string[] = []): string[] {
	const list = platforms.length ? platforms.map(parsePlatform) : [hostPlatform()];
	return Array.from({ length: count }, (_, i) => list[i % list.length]!);
}

/** Refuses, before anything is made, platforms whose Node is not installed. */
export function checkPlatformsRunnable(platforms: readonly string[]): void {
	for (const p of new Set(platforms)) {
		if (p !== hostPlatform() && !existsSync(foreignNodePath(p)))
			throw new ForeignNodeMissingError(p, foreignNodePath(p));
	}
}

function agentCommand(rec: LabRecord, node: LabNode): { argv: string[]; env: NodeJS.ProcessEnv } {
	const flags = [
		"agent",
		"--listen-addr",
		`${node.address}:${AGENT_PORT}`,
		...(node.zone ? ["--label", `zone=${node.zone}`] : []),
	];
	const env: NodeJS.ProcessEnv = { ...labNodeEnv(rec, node), TSSWARM_HOSTNAME: node.name };
	const platform = node.platform ?? hostPlatform();
	if (platform === hostPlatform()) return { argv: [cliPath, ...flags], env };
	const foreign = foreignNodePath(platform);
	if (!existsSync(foreign)) throw new ForeignNodeMissingError(platform, foreign);
	return {
		// The wrapper script would pick the host's Node; the foreign one runs the same entry point.
		argv: [foreign, join(repo, "cli/tsswarm.cjs"), ...flags],
		env: {
			...env,
			// qemu-user finds the arm64 loader and libraries of Debian's cross packages there.
			QEMU_LD_PREFIX: env.QEMU_LD_PREFIX ?? "/usr/aarch64-linux-gnu",
			NODE_COMPILE_CACHE: env.NODE_COMPILE_CACHE ?? join(repo, ".cache/node-compile-cache"),
		},
	};
}

const emulated = (node: LabNode) => (node.platform ?? hostPlatform()) !== hostPlatform();
/** How long an agent gets to open its socket; an emulated one starts some ten times slower. */
const startTimeoutMs = (node: LabNode) => (emulated(node) ? 240_000 : 60_000);

function logTail(node: LabNode): string {
	try {
		const lines = readFileSync(join(node.dir, "agent.log"), "utf8").trimEnd().split("\n");
		return lines.slice(-3).join(" | ");
	} catch {
		return "(no log)";
	}
}

const sameProcess = (a: ProcessIdentity) => (b: ProcessIdentity) => a.pid === b.pid && a.startTime === b.startTime;

/**
 * Starts the node's agent, detached (it outlives the caller, logs to the node's agent.log), records
 * it and waits for its control socket. The record is written as soon as the process exists.
 */
export async function startNodeAgent(
	root: string,
	rec: LabRecord,
	node: LabNode,
	opts: { signal?: AbortSignal } = {},
): Promise<ProcessIdentity> {
	const { argv, env } = agentCommand(rec, node);
	const sock = socketPath(node.dir);
	// A killed agent leaves its socket behind: wait for the new agent's, not the old file.
	rmSync(sock, { force: true });
	const log = openSync(join(node.dir, "agent.log"), "a");
	const [cmd, ...args] = netnsArgv(rec, node.name, argv);
	const child = spawn(cmd!, args, { stdio: ["ignore", log, log], env, detached: true });
	closeSync(log);
	child.unref();
	child.on("error", () => {}); // a failed spawn shows as a process that is not running, below
	const id = child.pid === undefined ? undefined : identify(child.pid);
	if (!id) throw new AgentStartError(`${node.name}'s agent did not start: ${logTail(node)}`);
	node.agent = { state: "running", process: id };
	rec.processes.push(id);
	writeRecord(root, rec);
	const deadline = Date.now() + startTimeoutMs(node);
	while (!existsSync(sock)) {
		opts.signal?.throwIfAborted();
		if (!isRunning(id)) {
			markStopped(rec, node);
			writeRecord(root, rec);
			throw new AgentStartError(`${node.name}'s agent exited at start: ${logTail(node)}`);
		}
		if (Date.now() > deadline)
			throw new AgentStartError(
				`${node.name}'s agent opened no socket within ${startTimeoutMs(node) / 1000} s; see ${join(node.dir, "agent.log")}`,
			);
		await sleep(50);
	}
	return id;
}

function markStopped(rec: LabRecord, node: LabNode): void {
	const p = node.agent?.process;
	if (p) rec.processes = rec.processes.filter((q) => !sameProcess(p)(q));
	node.agent = { state: "stopped" };
}

/**
 * Ends the node's agent by its identity (SIGTERM, or SIGKILL with `kill`) and waits until it is
 * gone; a SIGTERM not obeyed within 30 s becomes a SIGKILL. Returns false when it was not running.
 */
export async function stopNodeAgent(
	root: string,
	rec: LabRecord,
	node: LabNode,
	opts: { kill?: boolean } = {},
): Promise<boolean> {
	if (!node.agent) throw new NotClusterLabError(rec.name, `stop on ${node.name}`);
	const p = node.agent.process;
	const running = p !== undefined && isRunning(p);
	if (p && running) {
		const gone = async (sig: NodeJS.Signals, ms: number) => {
			try {
				process.kill(p.pid, sig);
			} catch {}
			const deadline = Date.now() + ms;
			while (isRunning(p) && Date.now() < deadline) await sleep(25);
			return !isRunning(p);
		};
		if (!(await gone(opts.kill ? "SIGKILL" : "SIGTERM", 30_000)) && !(await gone("SIGKILL", 10_000)))
			throw new AgentStartError(`${node.name}'s agent (pid ${p.pid}) did not exit after SIGKILL`);
	}
	markStopped(rec, node);
	writeRecord(root, rec);
	return running;
}

/** Whether the node's recorded agent process is running now. */
export function agentRunning(node: LabNode): boolean {
	return node.agent?.process !== undefined && isRunning(node.agent.process);
}
