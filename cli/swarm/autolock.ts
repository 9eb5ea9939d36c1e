// tsswarm init --autolock, swarm update --autolock, unlock-key [--rotate] [-q], unlock: the unlock key
// is printed where the user asked for it (enable, rotate, unlock-key) and read from stdin or a prompt
// that does not echo, as docker does.
import { client } from "../api.ts";
import { CommandError, InterruptedError, UsageError } from "../errors.ts";

export function unlockKeyText(key: string): string {
	return (
		"To unlock a manager after it restarts, run `tsswarm unlock` and provide the following key:\n\n" +
		`    ${key}\n\n` +
		"Remember to store this key in a password manager: without it a restarted manager cannot start.\n"
	);
}

export async function swarmUpdate(o: { autolock?: boolean; dataRoot: string }): Promise<void> {
	if (o.autolock === undefined) throw new UsageError("nothing to update: use --autolock=true|false");
	const r = await client(o).call("POST /v1/swarm/update", { body: { autolock: o.autolock } });
	process.stdout.write("Cluster updated.\n");
	if (r.unlockKey) process.stdout.write(unlockKeyText(r.unlockKey));
}

export async function unlockKey(o: { rotate?: boolean; quiet?: boolean; dataRoot: string }): Promise<void> {
	const r = await client(o).call("POST /v1/unlock-key", { body: { rotate: o.rotate ?? false } });
	if (r.unlockKey === null)
		throw new CommandError(
			"no unlock key is set: autolock is off (tsswarm swarm update --autolock=true)",
			"ERR_NOT_AUTOLOCKED",
		);
	if (o.quiet) return void process.stdout.write(`${r.unlockKey}\n`);
	if (o.rotate) process.stdout.write("Successfully rotated manager unlock key.\n\n");
	process.stdout.write(unlockKeyText(r.unlockKey));
}

/** The key from stdin: one line typed at a prompt that does not echo it, or whatever was piped in. */
async function readKey(): Promise<string> {
	if (!process.stdin.isTTY) {
		const chunks: Buffer[] = [];
		for await (const c of process.stdin) chunks.push(c as Buffer);
		return Buffer.concat(chunks).toString("utf8").trim();
	}
	process.stderr.write("Enter unlock key: ");
	// Raw mode: the terminal does not echo what is typed; we read up to Enter.
	const stdin = process.stdin;
	stdin.setRawMode(true);
	try {
		let line = "";
		for await (const c of stdin) {
			for (const ch of (c as Buffer).toString("utf8")) {
				if (ch === "\u0003") throw new InterruptedError("SIGINT");
				if (ch === "\r" || ch === "\n") return line.trim();
				if (ch === "\u007f" || ch === "\b") line = line.slice(0, -1);
				else line += ch;
			}
		}
		return line.trim();
	} finally {
		stdin.setRawMode(false);
		stdin.pause();
		process.stderr.write("\n");
	}
}

export async function unlock(o: { dataRoot: string }): Promise<void> {
	const key = await readKey();
	if (!key) throw new UsageError("no unlock key given on stdin");
	await client(o).call("POST /v1/unlock", { body: { key } });
	process.stdout.write("Manager unlocked.\n");
}
