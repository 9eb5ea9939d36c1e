import { createSocket, type Socket } from "node:dgram";
import { connect } from "node:net";
import t from "tap";
import {
	buildAnswer,
	buildQuery,
	DnsServer,
	nodeUpstreams,
	parseAnswer,
	parseQuery,
	parseResolvConf,
	type ServiceRecord,
} from "../../overlay-net/index.ts";

async function ask(port: number, name: string, raw?: Buffer): Promise<ReturnType<typeof parseAnswer>> {
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

/** A fake upstream on loopback: `answer` decides what (and whether) it replies to each query. */
async function fakeUpstream(
	t: { teardown(fn: () => unknown): void },
	answer: (q: Buffer, from: { address: string; port: number }, sock: Socket) => void,
): Promise<number> {
	const s = createSocket("udp4");
	await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
	s.on("message", (m, rinfo) => answer(m, rinfo, s));
	t.teardown(() => s.close());
	return s.address().port;
}

const reply = (q: Buffer, addresses: string[], id?: number) => {
	const parsed = parseQuery(q)!;
	return buildAnswer({ ...parsed, id: id ?? parsed.id }, addresses);
};

t.test("forwarding: upstreams in order with a timeout; replies checked for id and source", async (t) => {
	let deadAsked = 0;
	const dead = await fakeUpstream(t, () => {
		deadAsked++; // never answers
	});
	const spoofer = createSocket("udp4");
	await new Promise<void>((r) => spoofer.bind(0, "127.0.0.1", () => r()));
	t.teardown(() => spoofer.close());
	const good = await fakeUpstream(t, (q, from, sock) => {
		// First a forged reply from another port, then one with a wrong id, then the real one.
		spoofer.send(reply(q, ["198.19.66.6"]), from.port, from.address);
		sock.send(reply(q, ["198.19.66.7"], (parseQuery(q)!.id + 1) & 0xffff), from.port, from.address);
		setTimeout(() => sock.send(reply(q, ["198.19.77.7"]), from.port, from.address), 20);
	});
	const dns = new DnsServer({
		lookup: () => undefined,
		upstreams: [`127.0.0.1:${dead}`, `127.0.0.1:${good}`],
		timeoutMs: 300,
	});
	const me = await dns.start("127.0.0.1", 0);
	t.teardown(() => dns.stop());
	const started = performance.now();
	const r = await ask(me.port, "app.example");
	t.same(
		r.addresses,
		["198.19.77.7"],
		"the second upstream answered; the forged and mis-numbered replies were ignored",
	);
	t.equal(deadAsked, 1, "the first upstream was tried first");
	t.ok(performance.now() - started >= 250, "after the first upstream's timeout");
	t.same(nodeUpstreams("# c\nnameserver 198.18.0.53\nnameserver 127.0.0.53\nnameserver ::1\nsearch lab\n"), [
		"198.18.0.53:53",
		"127.0.0.53:53",
	]);
	t.same(
		nodeUpstreams("nameserver 127.0.0.53\nnameserver 198.18.0.53 # second\n", { skipLoopback: true }),
		["198.18.0.53:53"],
		"loopback resolvers can be skipped (a forwarder inside a sandbox cannot reach them)",
	);
	t.same(parseResolvConf("domain a.example\noptions ndots:2 edns0\nnameserver 198.18.0.1\n"), {
		nameservers: ["198.18.0.1"],
		search: ["a.example"],
		options: ["ndots:2", "edns0"],
	});
});

/** One query over TCP (length-prefixed). */
async function askTcp(port: number, name: string): Promise<ReturnType<typeof parseAnswer>> {
	const c = connect({ host: "127.0.0.1", port });
	try {
		return await new Promise((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`no TCP answer for ${name}`)), 5000);
			let buf = Buffer.alloc(0);
			c.on("error", reject);
			c.on("data", (d: Buffer) => {
				buf = Buffer.concat([buf, d]);
				if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
					clearTimeout(timer);
					resolve(parseAnswer(buf.subarray(2, 2 + buf.readUInt16BE(0))));
				}
			});
			const q = buildQuery(99, name);
			const len = Buffer.alloc(2);
			len.writeUInt16BE(q.length);
			c.write(Buffer.concat([len, q]));
		});
	} finally {
		c.destroy();
	}
}

t.test("large answers: truncated with TC over UDP, whole over TCP, forwarded over TCP too", async (t) => {
	const many = Array.from({ length: 40 }, (_, i) => `198.19.1.${i + 2}`);
	// The upstream is one of ours too, with TCP, holding a big record for a forwarded name.
	const upstream = new DnsServer({ lookup: (n) => (n === "big.example" ? { tasks: many } : undefined), upstreams: [] });
	const up = await upstream.start("127.0.0.1", 0, { tcp: true });
	t.teardown(() => upstream.stop());
	const dns = new DnsServer({
		lookup: (n) => (n === "web" ? { vip: "198.19.0.5", tasks: many } : undefined),
		upstreams: [`127.0.0.1:${up.port}`],
		timeoutMs: 1000,
	});
	const me = await dns.start("127.0.0.1", 0, { tcp: true });
	t.teardown(() => dns.stop());
	const raw = await new Promise<Buffer>((resolve, reject) => {
		const s = createSocket("udp4");
		const timer = setTimeout(() => reject(new Error("no answer")), 5000);
		s.on("message", (m) => {
			clearTimeout(timer);
			s.close();
			resolve(m);
		});
		s.send(buildQuery(5, "tasks.web"), me.port, "127.0.0.1");
	});
	t.ok(raw.length <= 512, `the UDP answer fits in 512 bytes (${raw.length})`);
	const udp = parseAnswer(raw);
	t.ok(udp.truncated, "TC is set");
	t.ok(
		udp.addresses.length > 20 && udp.addresses.length < 40,
		`as many whole records as fit (${udp.addresses.length})`,
	);
	const small = await ask(me.port, "web");
	t.notOk(small.truncated, "a small answer is not truncated");
	const tcp = await askTcp(me.port, "tasks.web");
	t.equal(tcp.addresses.length, 40, "over TCP the whole answer");
	t.notOk(tcp.truncated);
	const fwdUdp = await ask(me.port, "big.example");
	t.ok(fwdUdp.truncated, "a forwarded big answer is truncated for a UDP client");
	const fwdTcp = await askTcp(me.port, "big.example");
	t.equal(fwdTcp.addresses.length, 40, "and forwarded whole over TCP");
	t.ok(dns.stats.tcp >= 2);
});
