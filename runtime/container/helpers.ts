// The runtime's detached helper processes (the log daemon, a health runner). In development each is
// its own file run by this Node; in the release executable (a Node single-executable application:
// one file, no scripts beside it) each is a hidden subcommand of that executable, __NAME.
import { isSea } from "node:sea";

export type RuntimeHelper = "log-daemon" | "health-runner";

/** The program and leading arguments that start `name`; its own arguments follow. */
export function helperCommand(name: RuntimeHelper): string[] {
	if (isSea()) return [process.execPath, `__${name}`];
	return [process.execPath, new URL(`./${name}.ts`, import.meta.url).pathname];
}

/** Runs helper `name` in this process (the release executable's hidden subcommands). */
export async function runHelper(name: RuntimeHelper, argv: string[]): Promise<void> {
	if (name === "log-daemon") (await import("./log-daemon.ts")).main(argv);
	else await (await import("./health-runner.ts")).main(argv);
}
