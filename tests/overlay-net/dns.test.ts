import { createSocket } from "node:dgram";
import t from "tap";
import { buildQuery, DnsServer, parseAnswer, type ServiceRecord } from "../../overlay-net/index.ts";

async function ask(port: number, name: string, raw?: Buffer): Promise<{ rcode: number; addresses: string[] }> {
	const s = createSocket("udp4");
	try {
		return await new Promise((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`no answer for ${name}`)), 5000);
			s.on("message", (m) => {
				clearTimeout(timer);
				resolve(parseAnswer(m));
			});
			s.send(raw ?? buildQuery(4242, name), port, "127.0.0.1");
		});
	} finally {
		s.close();
	}
}

t.test("service discovery: VIP, tasks.NAME, dnsrr, NXDOMAIN, forwarding, failures", async (t) => {
	// The "node's resolver": another instance with its own records, on loopback.
	const upstream = new DnsServer({
		lookup: (n) => (n === "registry.example" ? { vip: "198.19.200.1", tasks: [] } : undefined),
		upstreams: [],
	});
	const up = await upstream.start("127.0.0.1", 0);
	t.teardown(() => upstream.stop());
	const services: Record<string, ServiceRecord> = {
		web: { vip: "198.19.0.5", tasks: ["198.19.0.7", "198.19.0.8"] },
		db: { tasks: ["198.19.0.9", "198.19.0.10"], endpointMode: "dnsrr" },
	};
	const dns = new DnsServer({ lookup: (n) => services[n], upstreams: [`127.0.0.1:${up.port}`], timeoutMs: 300 });
	const me = await dns.start("127.0.0.1", 0);
	t.teardown(() => dns.stop());
	t.same(
		await ask(me.port, "web"),
		{ id: 4242, rcode: 0, addresses: ["198.19.0.5"], truncated: false },
		"a service name gives its VIP",
	);
	t.same(
		(await ask(me.port, "tasks.web")).addresses.sort(),
		["198.19.0.7", "198.19.0.8"],
		"tasks.NAME gives the task addresses",
	);
	t.same(
		(await ask(me.port, "DB")).addresses.sort(),
		["198.19.0.10", "198.19.0.9"],
		"dnsrr gives task addresses; names are case-insensitive",
	);
	t.equal((await ask(me.port, "nosuch")).rcode, 3, "an unknown single-label name is NXDOMAIN");
	t.same((await ask(me.port, "registry.example")).addresses, ["198.19.200.1"], "other names are forwarded upstream");
	// A task that dies disappears at once.
	services.web!.tasks = ["198.19.0.8"];
	t.same((await ask(me.port, "tasks.web")).addresses, ["198.19.0.8"]);
	// Bad input: a truncated header is ignored, a garbled question gets FORMERR; the server keeps going.
	const garbled = Buffer.from(buildQuery(7, "web"));
	garbled[12] = 200;
	t.equal((await ask(me.port, "garbled", garbled)).rcode, 1, "FORMERR");
	t.ok(dns.stats.malformed >= 1);
	await upstream.stop();
	t.equal((await ask(me.port, "gone.example")).rcode, 2, "an unreachable upstream gives SERVFAIL");
	t.same((await ask(me.port, "web")).addresses, ["198.19.0.5"], "still answering");
});
