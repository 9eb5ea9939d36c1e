// Which address an agent listening on 0.0.0.0 tells the others.
import type { NetworkInterfaceInfo } from "node:os";
import t from "tap";
import { AgentError, pickAdvertiseIp } from "../../../agent/index.ts";

const v4 = (address: string, internal = false) =>
	({
		address,
		family: "IPv4",
		internal,
		netmask: "255.255.0.0",
		mac: "00:00:00:00:00:00",
		cidr: null,
	}) as NetworkInterfaceInfo;
const lo = { lo: [v4("127.0.0.1", true)] };

t.test("the default route's interface wins", async (t) => {
	t.equal(pickAdvertiseIp({ ...lo, eth0: [v4("198.18.0.5")], eth1: [v4("10.1.2.3")] }, "eth1"), "10.1.2.3");
});

t.test("without a default route, the only non-loopback address", async (t) => {
	t.equal(pickAdvertiseIp({ ...lo, eth0: [v4("198.18.0.5")] }, null), "198.18.0.5");
});

t.test("ambiguous or nothing: a named error asking for --advertise-addr", async (t) => {
	const err = (() => {
		try {
			pickAdvertiseIp({ ...lo, eth0: [v4("198.18.0.5")], eth1: [v4("10.1.2.3")] }, null);
		} catch (e) {
			return e as AgentError;
		}
	})();
	t.ok(err instanceof AgentError);
	t.equal(err?.code, "ERR_ADVERTISE_AMBIGUOUS");
	t.match(err?.message, /198\.18\.0\.5, 10\.1\.2\.3.*--advertise-addr/);
	t.throws(() => pickAdvertiseIp(lo, null), { code: "ERR_ADVERTISE_AMBIGUOUS", message: /--advertise-addr/ });
});
