// Which agent the CLI talks to: --host unix:///PATH (before the command), else TSSWARM_HOST, else
// the socket under --data-root. The CLI reaches the agent only through agent/api's client.
import { ApiClient } from "../agent/api/client.ts";
import { globals } from "./commands/options.ts";
import { UsageError } from "./errors.ts";

/** The socket path of a host address; only unix sockets (the local API is root's, on this machine). */
export function hostSocket(host: string, from: string): string {
	const m = /^unix:\/\/(\/.*)$/.exec(host);
	if (!m || m[1] === "/") throw new UsageError(`${from} "${host}": use unix:///PATH/TO/tsswarm.sock`);
	return m[1]!;
}

export function client(o: { dataRoot: string }): ApiClient {
	if (globals.host !== undefined) return new ApiClient(hostSocket(globals.host, "--host"));
	const env = process.env.TSSWARM_HOST;
	if (env) return new ApiClient(hostSocket(env, "TSSWARM_HOST"));
	return ApiClient.forDataRoot(o.dataRoot);
}
