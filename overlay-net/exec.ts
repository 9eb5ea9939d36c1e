// Running ip/bridge/nft without a shell; batches through `ip -batch` to keep kernel work quick.
import { spawn } from "node:child_process";
import type { Socket } from "node:dgram";
import type { Server } from "node:net";
import { isSea } from "node:sea";
import { fileURLToPath } from "node:url";
import { OverlayError } from "./errors.ts";

export function exec(argv: string[], input?: string): Promise<string> {
	return new Promise((resolve, reject) => {
		const p = spawn(argv[0]!, argv.slice(1), { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
		let out = "";
		let err = "";
		p.stdout!.on("data", (d: Buffer) => {
			out += d;
		});
		p.stderr!.on("data", (d: Buffer) => {
			err += d;
		});
		p.on("error", reject);
		p.on("close", (code) =>
			code === 0
				? resolve(out)
				: reject(new OverlayError(`${argv.join(" ")}: ${err.trim() || `exit ${code}`}`, "ERR_KERNEL")),
		);
		if (input !== undefined) p.stdin!.end(input);
	});
}

export const ipBatch = (netns: string | undefined, lines: string[]) =>
	lines.length === 0
		? Promise.resolve("")
		: exec(["ip", ...(netns ? ["-n", netns] : []), "-batch", "-"], `${lines.join("\n")}\n`);

/** `bridge -batch` (one process for any number of FDB changes) inside a namespace (undefined: this one). */
export const bridgeBatch = (netns: string | undefined, lines: string[]) =>
	lines.length === 0
		? Promise.resolve("")
		: exec(["bridge", ...(netns ? ["-n", netns] : []), "-batch", "-"], `${lines.join("\n")}\n`);

/** argv run inside a named namespace (undefined: this process's own namespace, e.g. a real host). */
export const inNetns = (netns: string | undefined, argv: string[]) =>
	netns ? ["nsenter", `--net=/run/netns/${netns}`, ...argv] : argv;

/** `ip` arguments selecting a namespace (none for this process's own). */
export const ipNs = (netns: string | undefined) => (netns ? ["-n", netns] : []);

/** A kernel error saying the object is already gone (deleting it again is then fine). */
export const isGone = (err: unknown) =>
	err instanceof Error &&
	/Cannot find device|No such file|does not exist|No such process|Cannot open network namespace/.test(err.message);

export async function netnsList(): Promise<string[]> {
	return (await exec(["ip", "netns", "list"]))
		.split("\n")
		.map((l) => l.split(" ")[0] ?? "")
		.filter(Boolean);
}

/** The links in a namespace (the node's when undefined): name and the `ip -d -o` line; none if it is gone. */
export const linksIn = async (ns: string | undefined) =>
	(await exec(["ip", ...ipNs(ns), "-d", "-o", "link", "show"]).catch(() => ""))
		.split("\n")
		.map((l) => ({ name: /^\d+: ([^@:]+)/.exec(l)?.[1] ?? "", line: l }))
		.filter((l) => l.name);

/** A UDP socket and (with `tcp`) a listening TCP server on address:port inside the namespace. */
export function bindInNetns(
	netns: string,
	address: string,
	port: number,
	o: { tcp?: boolean; timeoutMs?: number } = {},
): Promise<{ udp: Socket; tcp?: Server }> {
	// The release executable (a Node single-executable application) runs the helper as a hidden subcommand.
	const helper = isSea() ? "__netns-socket" : fileURLToPath(new URL("./netns-socket.ts", import.meta.url));
	const argv = [`--net=/run/netns/${netns}`, process.execPath, helper, address, String(port), o.tcp ? "tcp" : "udp"];
	const child = spawn("nsenter", argv, { stdio: ["ignore", "ignore", "pipe", "ipc"] });
	let err = "";
	child.stderr!.on("data", (d: Buffer) => {
		err += d;
	});
	const got: { udp?: Socket; tcp?: Server } = {};
	return new Promise((resolve, reject) => {
		const fail = (why: string) => {
			clearTimeout(timer);
			got.udp?.close();
			got.tcp?.close();
			reject(new OverlayError(`binding ${address}:${port} in ${netns}: ${why}`, "ERR_KERNEL"));
		};
		const timer = setTimeout(() => {
			child.kill("SIGKILL");
			fail("timed out");
		}, o.timeoutMs ?? 10_000);
		child.on("message", (m: { ok?: boolean; kind?: "udp" | "tcp"; error?: string }, handle: unknown) => {
			if (!m.ok || !handle) return fail(m.error ?? "no socket");
			if (m.kind === "udp") got.udp = handle as Socket;
			else got.tcp = handle as Server;
			if (got.udp && (got.tcp || !o.tcp)) {
				clearTimeout(timer);
				resolve(got as { udp: Socket; tcp?: Server });
			}
		});
		child.on("error", (e) => fail(e.message));
		child.on("close", (code) => {
			if (!got.udp || (o.tcp && !got.tcp)) fail(err.trim() || `exit ${code}`);
		});
	});
}

/** Runs nft with a rule set inside a namespace (undefined: this one). */
export const nftApply = (netns: string | undefined, ruleset: string) =>
	exec(inNetns(netns, ["nft", "-f", "-"]), ruleset);

/** Deletes an nft table if it is there. */
export const nftDeleteTable = (netns: string | undefined, table: string) =>
	exec(inNetns(netns, ["nft", "delete", "table", "ip", table])).then(
		() => true,
		() => false,
	);
