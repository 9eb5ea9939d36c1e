// Option helpers every command registration shares (cheap: loaded on every start-up).
import type { Command } from "commander";

/** The data directory: TSSWARM_DATA_ROOT (the lab sets one per node) or /var/lib/tsswarm. */
export const dataRoot = () => process.env.TSSWARM_DATA_ROOT ?? "/var/lib/tsswarm";

/** For repeatable options: each occurrence appends. */
export const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Options given before the command (`tsswarm --host unix:///run/x.sock node ls`), set by main. */
export const globals: { host?: string } = {};

/**
 * The flags of every list command (cli/format.ts reads them): --format, -q, --filter (repeatable),
 * --no-trunc. `filters` lists the command's filter keys for --help.
 */
export function listOptions(cmd: Command, filters: string[] = []): Command {
	cmd
		.option("--format <format>", "table, json, or a Go template: '{{.ID}}', 'table {{.ID}}\\t{{.Name}}'")
		.option("-q, --quiet", "only ids")
		.option("--no-trunc", "do not truncate ids");
	if (filters.length > 0)
		cmd.option(`-f, --filter <key=value>`, `filter (repeatable; keys: ${filters.join(", ")})`, collect);
	return cmd;
}
