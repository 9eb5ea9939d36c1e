// Valid objects for store tests: each test changes only the fields it is about.
import { validateServiceSpec } from "../../../agent/services/index.ts";
import type { Cluster, Network, Node, Service, Task } from "../../../agent/store/index.ts";

export const T0 = "2025-01-01T00:00:00.000Z";

export const net = (id: string, name: string, o: Partial<Network> = {}): Network => ({
	id,
	name,
	driver: "overlay",
	subnet: "198.19.1.0/24",
	gateway: "198.19.1.1",
	internal: false,
	attachable: false,
	ingress: false,
	labels: {},
	options: {},
	vni: 4096,
	createdAt: T0,
	...o,
});

export const cluster = (nextVni: number): Cluster => ({
	id: "cluster",
	clusterId: "c1",
	addrPools: ["198.19.0.0/16"],
	subnetSize: 24,
	nextVni,
	createdAt: T0,
});

export const node = (id: string, o: Partial<Node> = {}): Node => ({
	id,
	hostname: `host-${id}`,
	addr: "198.18.0.1:2377",
	role: "worker",
	availability: "active",
	labels: {},
	platform: { os: "linux", architecture: "amd64" },
	resources: { nanoCpus: 2e9, memoryBytes: 2 ** 31 },
	engineVersion: "0.1.0",
	createdAt: T0,
	...o,
});

export const service = (id: string, name: string, o: Partial<Service> = {}): Service => ({
	id,
	spec: validateServiceSpec({ name, task: { container: { image: "busybox:latest" } } }),
	specVersion: 1,
	createdAt: T0,
	updatedAt: T0,
	...o,
});

const TEMPLATE = validateServiceSpec({ name: "t", task: { container: { image: "busybox:latest" } } }).task;

export const task = (id: string, o: Partial<Task> = {}): Task => ({
	id,
	serviceId: "s1",
	serviceName: "web",
	slot: 1,
	desiredState: "running",
	status: { state: "new", message: "created", timestamp: T0 },
	networks: [],
	spec: structuredClone(TEMPLATE),
	image: "busybox:latest",
	specVersion: 1,
	createdAt: T0,
	...o,
});
