// Run inside a test-made namespace as if it were a real host: the driver gets no nodeNetns, so it
// must work in its own namespace (no `ip -n`), find the underlay device and MTU itself, and reach
// the host's namespace for the node endpoint and egress veths by this process's pid.
import { Allocator, OverlayDriver } from "../../overlay-net/index.ts";

const [underlayIp, prefix, taskNs, state] = process.argv.slice(2);
const ipam = new Allocator(JSON.parse(state!));
const [app, ingress] = ipam.networks();
const d = new OverlayDriver({ underlayIp: underlayIp!, prefix: prefix! });
await d.createNetwork(app!);
await d.createNetwork(ingress!);
const node = ipam.allocateAddress(ingress!.id, "node:1");
await d.attachNode(ingress!, node);
const appAddr = ipam.allocateAddress(app!.id, "task:1");
const ingressAddr = ipam.allocateAddress(ingress!.id, "task:1");
await d.attachTask(app!, taskNs!, appAddr);
await d.attachTask(ingress!, taskNs!, ingressAddr, "eth1");
await d.publish([{ protocol: "tcp", publishedPort: 8080, targetPort: 80, backends: [ingressAddr] }], ingress!);
process.stdout.write(`${JSON.stringify({ node, appAddr, ingressAddr, mtu: d.mtu })}\n`);
