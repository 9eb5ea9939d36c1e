// Running ip/bridge/nft without a shell; batches through `ip -batch` to keep kernel work quick.
import { spawn } from "node:child_process";
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
