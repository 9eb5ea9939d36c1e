// A stand-in agent for the crash test: programs a node's overlay state (two networks, endpoint
// entries, the node's ingress endpoint, two tasks, a VIP, a mesh port, a host-mode port, DNS),
// prints "ready" and waits to be killed.
import { Allocator, OverlayDriver } from "../../overlay-net/index.ts";

const [netns, address, state, t1, t2] = process.argv.slice(2);
const ipam = new Allocator(JSON.parse(state!));
const [app, ingress] = ipam.networks();
const d = new OverlayDriver({ nodeNetns: netns!, underlayIp: address!, prefix: netns! });
for (const n of [app!, ingress!]) {
	await d.createNetwork(n);
	await d.setPeers(n, ["198.18.0.2"]);
	await d.setEndpoints(n, [{ address: ipam.allocateAddress(n.id, "remote"), vtep: "198.18.0.2" }]);
}
await d.attachNode(ingress!, ipam.allocateAddress(ingress!.id, "node:1"));
const a1 = ipam.allocateAddress(app!.id, "t1");
const a2 = ipam.allocateAddress(app!.id, "t2");
await d.attachTask(app!, t1!, a1);
await d.attachTask(app!, t2!, a2);
await d.attachTask(ingress!, t2!, ipam.allocateAddress(ingress!.id, "t2"), "eth1");
await d.setVips(app!, [{ vip: ipam.allocateAddress(app!.id, "vip:web"), backends: [a1, a2] }]);
await d.publish([{ protocol: "tcp", publishedPort: 8080, targetPort: 80, backends: ["198.19.1.9"] }], ingress!);
await d.publishHost([{ protocol: "tcp", publishedPort: 9090, targetPort: 80, backend: a1, network: app! }]);
await d.serveDns(app!, () => undefined, []);
process.stdout.write(`${JSON.stringify({ a1, a2 })}\n`);
setInterval(() => {}, 1 << 30);
