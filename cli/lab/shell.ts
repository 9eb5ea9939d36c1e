// Runs system tools (ip, kill, ...) without a shell: argv arrays only, stderr kept for errors.
import { spawn } from "node:child_process";
import { CommandFailedError } from "./errors.ts";

export interface RunResult {
	stdout: string;
	stderr: string;
	code: number | null;
}

export interface RunOptions {
	input?: string;
	signal?: AbortSignal;
	env?: NodeJS.ProcessEnv;
	cwd?: string;
	/** Resolve with the result instead of throwing when the command exits non-zero. */
	allowFailure?: boolean;
}

export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
	const [cmd, ...args] = argv;
	if (!cmd) throw new TypeError("run: empty argv");
	return new Promise((resolve, reject) => {
		const child = spawn(cmd, args, {
			stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
			signal: opts.signal,
			env: opts.env,
			cwd: opts.cwd,
		});
		let stdout = "";
		let stderr = "";
		child.stdout?.setEncoding("utf8").on("data", (d: string) => {
			stdout += d;
		});
		child.stderr?.setEncoding("utf8").on("data", (d: string) => {
			stderr += d;
		});
		child.on("error", reject);
		child.on("close", (code) => {
			if (code !== 0 && !opts.allowFailure) reject(new CommandFailedError(argv, code, stderr));
			else resolve({ stdout, stderr, code });
		});
		if (opts.input !== undefined) child.stdin?.end(opts.input);
	});
}

/** Runs many `ip` commands in one process (`ip -batch`), which is much faster than one spawn each. */
export async function ipBatch(lines: readonly string[], opts: { netns?: string; signal?: AbortSignal } = {}) {
	if (lines.length === 0) return;
	const ns = opts.netns ? ["-n", opts.netns] : [];
	await run(["ip", ...ns, "-batch", "-"], { input: `${lines.join("\n")}\n`, signal: opts.signal });
}
