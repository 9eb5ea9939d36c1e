// Test fixtures: a busybox httpd serving one page inside a namespace, and fetching a URL from one.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../cli/lab/index.ts";
import { tempDir, waitFor } from "../helpers/index.ts";

/** Serves `page` on addr:80 inside the namespace until teardown. */
export function serveHttp(t: { teardown(fn: () => unknown): void }, netns: string, addr: string, page: string): void {
	const dir = tempDir("ovhttp-");
	const www = join(dir.path, "www");
	mkdirSync(www);
	writeFileSync(join(www, "index.html"), page);
	const httpd = spawn(
		"nsenter",
		[`--net=/run/netns/${netns}`, "busybox", "httpd", "-f", "-p", `${addr}:80`, "-h", www],
		{
			stdio: "ignore",
		},
	);
	t.teardown(() => {
		httpd.kill("SIGKILL");
		dir.remove();
	});
}

/** One GET from inside a namespace, 3 s at most (busybox wget's own -T crashes on this busybox). */
export const fetchIn = (netns: string, url: string) =>
	run(["nsenter", `--net=/run/netns/${netns}`, "timeout", "3", "busybox", "wget", "-q", "-O-", url], {
		allowFailure: true,
	});

/** Waits until the URL answers from inside the namespace; the page. */
export const waitForPage = (what: string, netns: string, url: string) =>
	waitFor(
		what,
		async () => {
			const r = await fetchIn(netns, url);
			return r.code === 0 ? r.stdout : undefined;
		},
		{ timeoutMs: 10_000 },
	);
