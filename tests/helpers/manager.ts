// A one-manager store on a loopback libp2p host in a temp dir, cluster "c1" initialised with
// 198.19.0.0/16 pools: what the manager and store tests start from. Torn down with the test.
import { Host, MemoryAllowList } from "../../agent/host/index.ts";
import { Manager } from "../../agent/manager/index.ts";
import { NodeDirectory } from "../../agent/nodes/index.ts";
import { tempDir } from "./index.ts";

const noop = (_o: object, _m?: string) => {};
const quiet = { info: noop, warn: noop, error: noop, debug: noop };

export async function oneManager(
	t: { teardown(f: () => unknown): void },
	prefix: string,
): Promise<{ m: Manager; h: Host; dir: string }> {
	const dir = tempDir(prefix);
	t.teardown(dir.remove);
	const h = await Host.create({
		dataDir: dir.path,
		listen: ["/ip4/127.0.0.1/tcp/0"],
		allowList: new MemoryAllowList(),
	});
	const m = await Manager.start({
		host: h,
		dataRoot: dir.path,
		clusterId: "c1",
		logger: quiet,
		bootstrap: true,
		directory: new NodeDirectory(),
	});
	t.teardown(async () => {
		await m.stop().catch(() => {});
		await h.stop().catch(() => {});
	});
	await m.initCluster("c1", { addrPools: ["198.19.0.0/16"], subnetSize: 24 });
	return { m, h, dir: dir.path };
}
