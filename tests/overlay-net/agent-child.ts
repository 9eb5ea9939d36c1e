// A stand-in agent for the crash test: programs a node's overlay state (two networks, the node's
// ingress endpoint, a published port, DNS), prints "ready" and waits to be killed.
import { Allocator, OverlayDriver } from "../../overlay-net/index.ts";

const [netns, address, state] = process.argv.slice(2);
const ipam = new Allocator(JSON.parse(state!));
const [app, ingress] = ipam.networks();
const d = new OverlayDriver({ nodeNetns: netns!, underlayIp: address!, prefix: netns! });
for (const n of [app!, ingress!]) {
	await d.createNetwork(n);
	await d.setPeers(n, ["198.18.0.2"]);
}
await d.attachNode(ingress!, ipam.allocateAddress(ingress!.id, "node:1"));
await d.publish([{ protocol: "tcp", publishedPort: 8080, targetPort: 80, backends: ["198.19.1.9"] }], ingress!);
await d.serveDns(app!, () => undefined, []);
process.stdout.write("ready\n");
setInterval(() => {}, 1 << 30);
