// Running ip/bridge/nft without a shell; batches through `ip -batch` to keep kernel work quick.
import { spawn } from "node:child_process";
import type { Socket } from "node:dgram";
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

export async function netnsList(): Promise<string[]> {
	return (await exec(["ip", "netns", "list"]))
		.split("\n")
		.map((l) => l.split(" ")[0] ?? "")
		.filter(Boolean);
}

/** A UDP socket bound to address:port inside the named network namespace, owned by this process. */
export function bindUdpInNetns(netns: string, address: string, port: number, timeoutMs = 10_000): Promise<Socket> {
	const helper = fileURLToPath(new URL("./netns-socket.ts", import.meta.url));
	const child = spawn("nsenter", [`--net=/run/netns/${netns}`, process.execPath, helper, address, String(port)], {
		stdio: ["ignore", "ignore", "pipe", "ipc"],
	});
	let err = "";
	child.stderr!.on("data", (d: Buffer) => {
		err += d;
	});
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			child.kill("SIGKILL");
			reject(new OverlayError(`binding ${address}:${port} in ${netns} timed out`, "ERR_KERNEL"));
		}, timeoutMs);
		child.on("message", (m: { ok?: boolean; error?: string }, handle: unknown) => {
			clearTimeout(timer);
			if (m.ok && handle) resolve(handle as Socket);
			else reject(new OverlayError(`binding ${address}:${port} in ${netns}: ${m.error ?? "no socket"}`, "ERR_KERNEL"));
		});
		child.on("error", (e) => {
			clearTimeout(timer);
			reject(e);
		});
		child.on("exit", (code) => {
			clearTimeout(timer);
			reject(new OverlayError(`binding ${address}:${port} in ${netns}: ${err.trim() || `exit ${code}`}`, "ERR_KERNEL"));
		});
	});
}

/** Runs nft with a rule set inside a namespace (undefined: this one). */
export const nftApply = (netns: string | undefined, ruleset: string) =>
	exec([...(netns ? ["nsenter", `--net=/run/netns/${netns}`] : []), "nft", "-f", "-"], ruleset);
