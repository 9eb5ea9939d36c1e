// withRegistry(t): a real registry (Debian's docker-registry) on 127.0.0.1 at a free port, seeded
// with busybox:latest and httpd:latest (multi-arch), stopped and removed in t.teardown.
import { createServer } from "node:net";
import { pushTestImages, startRegistry } from "../../cli/lab/registry.ts";
import { tempDir } from "./index.ts";

interface Teardownable {
	teardown(fn: () => unknown): void;
}

export interface TestRegistry {
	/** "127.0.0.1:PORT" — use it in image references: `${hostPort}/busybox:latest`. */
	hostPort: string;
	url: string;
}

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const srv = createServer();
		srv.once("error", reject);
		srv.listen(0, "127.0.0.1", () => {
			const addr = srv.address();
			srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
		});
	});
}

export async function withRegistry(
	t: Teardownable,
	opts: { seed?: boolean; tls?: { certificate: string; key: string; ca: string } } = {},
): Promise<TestRegistry> {
	const dir = tempDir("tsswarm-registry-");
	t.teardown(dir.remove);
	let lastError: unknown;
	// The free port can be taken between probing and binding; try a few.
	for (let attempt = 0; attempt < 3; attempt++) {
		try {
			const reg = await startRegistry({ dataDir: dir.path, host: "127.0.0.1", port: await freePort(), tls: opts.tls });
			t.teardown(reg.stop);
			if (opts.seed ?? true) await pushTestImages(reg.hostPort);
			return { hostPort: reg.hostPort, url: reg.url };
		} catch (err) {
			lastError = err;
		}
	}
	throw lastError;
}
