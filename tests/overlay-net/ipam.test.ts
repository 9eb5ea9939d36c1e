// The allocator's refusals and exhaustion, with named errors.
import t from "tap";
import {
	Allocator,
	InvalidCidrError,
	InvalidPortError,
	NetworkExistsError,
	NetworkInUseError,
	PoolExhaustedError,
	PortConflictError,
} from "../../overlay-net/index.ts";

t.test("a network id or name that exists is refused", async (t) => {
	const a = new Allocator({ pools: ["198.19.0.0/16"] });
	a.createNetwork({ id: "n1", name: "front" });
	t.throws(() => a.createNetwork({ id: "n2", name: "front" }), NetworkExistsError, "same name");
	t.throws(() => a.createNetwork({ id: "n1", name: "other" }), NetworkExistsError, "same id");
	t.equal(a.networks().length, 1, "nothing half-created");
});

t.test("removeNetwork refuses while addresses are in use, unless forced", async (t) => {
	const a = new Allocator({ pools: ["198.19.0.0/16"] });
	const n = a.createNetwork({ id: "n1", name: "front" });
	const task = a.allocateAddress("n1", "task:1");
	const vip = a.allocateAddress("n1", "vip:web");
	const err = t.throws(() => a.removeNetwork("front"), NetworkInUseError) as NetworkInUseError;
	t.equal(err.code, "ERR_NETWORK_IN_USE");
	t.match(err.message, /task:1.*vip:web/, "the error names who holds addresses");
	a.releaseAddress("n1", task);
	a.releaseAddress("n1", vip);
	a.releaseAddress("n1", n.gateway);
	t.same(n.addresses, { [n.gateway]: "gateway" }, "released addresses are free; the gateway stays reserved");
	a.removeNetwork("n1");
	t.equal(a.networks().length, 0);
	a.createNetwork({ id: "n2", name: "back" });
	a.allocateAddress("n2", "task:2");
	a.removeNetwork("n2", { force: true });
	t.equal(a.networks().length, 0, "force removes a network in use");
	t.equal(a.createNetwork({ id: "n3", name: "again" }).subnet, "198.19.0.0/24", "its subnet is free again");
});

t.test("ports: protocols are separate, mode=host is per node, bad ports are named", async (t) => {
	const a = new Allocator();
	a.publishPort(8080, "svc-a");
	t.throws(() => a.publishPort(8080, "svc-b"), PortConflictError, "tcp/8080 is taken");
	a.publishPort(8080, "svc-b", { protocol: "udp" });
	t.throws(() => a.publishPort(8080, "svc-c", { protocol: "udp" }), /8080\/udp is already published by svc-b/);
	a.publishPort(8080, "svc-a");
	t.pass("the owner may publish its own port again");
	// mode=host: per node, and never on a mesh port.
	t.throws(() => a.publishPort(8080, "svc-h", { mode: "host", node: "n1" }), PortConflictError, "mesh port");
	a.publishPort(9090, "svc-h", { mode: "host", node: "n1" });
	a.publishPort(9090, "svc-i", { mode: "host", node: "n2" });
	t.pass("the same host-mode port on two nodes");
	t.throws(() => a.publishPort(9090, "svc-j", { mode: "host", node: "n1" }), /mode=host on n1/);
	t.throws(() => a.publishPort(9090, "svc-mesh"), PortConflictError, "a mesh port over a host-mode port");
	a.releasePort(9090, { mode: "host", node: "n1" });
	a.publishPort(9090, "svc-j", { mode: "host", node: "n1" });
	a.releasePort(8080);
	a.publishPort(8080, "svc-d");
	t.pass("a released port is free");
	for (const bad of [0, 65536, 1.5, Number.NaN]) {
		const e = t.throws(() => a.publishPort(bad, "x"), InvalidPortError) as InvalidPortError;
		t.equal(e.code, "ERR_INVALID_PORT");
		t.notOk(e instanceof InvalidCidrError, "not a CIDR error");
	}
	t.throws(() => a.publishPort(80, "x", { protocol: "sctp" as "tcp" }), /sctp is not tcp or udp/);
	t.throws(() => a.publishPort(80, "x", { mode: "host" }), /needs its node/);
});

t.test("exhaustion: addresses of a subnet, VNIs", async (t) => {
	const a = new Allocator({ pools: ["198.19.0.0/16"], vniMin: 4096, vniMax: 4098 });
	a.createNetwork({ id: "small", name: "small", subnet: "198.19.9.0/29" });
	// 8 addresses: network, broadcast, gateway, and 5 for tasks.
	const got = [1, 2, 3, 4, 5].map((i) => a.allocateAddress("small", `task:${i}`));
	t.same(got, ["198.19.9.2", "198.19.9.3", "198.19.9.4", "198.19.9.5", "198.19.9.6"]);
	const e = t.throws(() => a.allocateAddress("small", "task:6"), PoolExhaustedError) as PoolExhaustedError;
	t.match(e.message, /198\.19\.9\.0\/29/, "the error names the subnet");
	a.releaseAddress("small", "198.19.9.4");
	t.equal(a.allocateAddress("small", "task:6"), "198.19.9.4");
	a.createNetwork({ id: "b", name: "b" });
	a.createNetwork({ id: "c", name: "c" });
	t.throws(() => a.createNetwork({ id: "d", name: "d" }), PoolExhaustedError, "three VNIs in the range");
	t.throws(() => a.createNetwork({ id: "d", name: "d" }), /no free VNI/);
	a.removeNetwork("b");
	const d = a.createNetwork({ id: "d", name: "d" });
	t.equal(d.vni, 4097, "a freed VNI is reused after the counter wraps");
	t.same(
		a.networks().map((n) => n.vni),
		[4096, 4098, 4097],
	);
});
