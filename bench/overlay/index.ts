// bench/overlay: the overlay data path against the underlay it runs on, in one run on a two-node
// lab. Task endpoints a (n1) and b, c (n2) are network namespaces attached by the overlay driver,
// exactly as a container's namespace is (the container adds nothing on the network path).
// (1) iperf3 TCP throughput a -> b over VXLAN vs n1 -> n2 on the underlay; (2) request/response
// latency: TCP round trips of one byte on one connection (rr.ts, a Node echo server and client,
// the same on both paths) a -> b vs n1 -> n2, median and p99, the overlay's added p50 in µs; ICMP
// echo round trips as a second view; (3) HTTP request rate with wrk from a to busybox httpd on b, through a VIP
// (nftables DNAT in a's namespace, to c) vs straight to b (b and c are identical httpds on n2; the
// VIP goes to its own server because TCP timestamps are offset per pre-NAT address pair, so a
// server's TIME_WAIT left by direct connections would refuse (PAWS) reused ports coming via the VIP).
// Rounds alternate underlay and overlay so the shared machine's noise hits both.
// Options: --seconds S per iperf3/wrk run (5), --rounds N (3).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { createLab, destroyRecord, type LabRecord, labRoot, run } from "../../cli/lab/index.ts";
import { Allocator, type NetworkAlloc, OverlayDriver } from "../../overlay-net/index.ts";
import { uniqueName } from "../../tests/helpers/index.ts";

const { values } = parseArgs({
	options: { seconds: { type: "string", default: "5" }, rounds: { type: "string", default: "3" } },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const log = (m: string) => process.stderr.write(`[overlay] ${m}\n`);
const median = (xs: number[]) => pct(xs, 50);
const pct = (xs: number[], p: number) =>
	[...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const round = (x: number, d = 3) => Number(x.toFixed(d));

async function ensureTools(): Promise<void> {
	const missing: string[] = [];
	for (const tool of ["iperf3", "wrk"]) {
		if ((await run(["sh", "-c", `command -v ${tool}`], { allowFailure: true })).code !== 0) missing.push(tool);
	}
	if (missing.length === 0) return;
	log(`installing ${missing.join(" ")}`);
	await run(["sh", "-c", `DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(" ")} >/dev/null`]);
}

const inNs = (ns: string, argv: string[]) => ["nsenter", `--net=/run/netns/${ns}`, ...argv];

/** Throughput (Gb/s) and CPU seconds per GB moved (iperf3's client + server, softirq work included). */
async function iperf(clientNs: string, serverNs: string, serverAddr: string): Promise<{ gbps: number; cpu: number }> {
	const server = spawn("nsenter", [`--net=/run/netns/${serverNs}`, "iperf3", "-s", "-1", "-B", serverAddr], {
		stdio: "ignore",
	});
	try {
		for (let i = 0; ; i++) {
			const r = await run(inNs(clientNs, ["iperf3", "-J", "-c", serverAddr, "-t", String(SECONDS)]), {
				allowFailure: true,
			});
			const end = r.code === 0 ? JSON.parse(r.stdout).end : undefined;
			const got = end?.sum_received;
			if (typeof got?.bits_per_second === "number") {
				const c = end.cpu_utilization_percent ?? {};
				const cpu = (((c.host_total ?? 0) + (c.remote_total ?? 0)) / 100) * got.seconds;
				return { gbps: got.bits_per_second / 1e9, cpu: cpu / (got.bytes / 1e9) };
			}
			if (i > 50) throw new Error(`iperf3 to ${serverAddr}: ${r.stderr || r.stdout}`);
			await new Promise((res) => setTimeout(res, 100)); // the server is still starting
		}
	} finally {
		server.kill("SIGKILL");
	}
}

/** Per-packet echo round trips (µs). */
async function rtts(clientNs: string, addr: string): Promise<number[]> {
	const r = await run(inNs(clientNs, ["ping", "-n", "-q", "-c", "1", addr]), { allowFailure: true }); // warm ARP
	if (r.code !== 0) throw new Error(`no path to ${addr}`);
	const p = await run(inNs(clientNs, ["ping", "-n", "-c", "300", "-i", "0.005", addr]));
	return [...p.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000);
}

const RR = join(import.meta.dirname, "rr.ts");

/** TCP request/response round trips (µs) from clientNs to an echo server in serverNs. */
async function tcpRr(clientNs: string, serverNs: string, addr: string): Promise<number[]> {
	const server = spawn("nsenter", [`--net=/run/netns/${serverNs}`, process.execPath, RR, "server", addr, "7007"], {
		stdio: ["ignore", "pipe", "inherit"],
	});
	try {
		await new Promise<void>((resolve, reject) => {
			createInterface({ input: server.stdout! }).once("line", () => resolve());
			server.once("exit", (c) => reject(new Error(`rr server exited ${c}`)));
		});
		const r = await run(inNs(clientNs, [process.execPath, RR, "client", addr, "7007", "3000"]));
		return JSON.parse(r.stdout) as number[];
	} finally {
		server.kill("SIGKILL");
	}
}

async function wrk(clientNs: string, url: string): Promise<number> {
	const r = await run(inNs(clientNs, ["wrk", "-t", "1", "-c", "8", "-d", `${SECONDS}s`, url]));
	const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
	if (!m) throw new Error(`wrk gave no rate: ${r.stdout}`);
	if (process.env.BENCH_VERBOSE || /Non-2xx|Socket errors/.test(r.stdout)) log(`wrk ${url}: ${r.stdout.trim()}`);
	return Number(m[1]);
}

async function main(): Promise<void> {
	await ensureTools();
	const root = labRoot();
	const rec: LabRecord = await createLab({ name: uniqueName("bov"), nodes: 2, root });
	const procs: ChildProcess[] = [];
	const www = join("/tmp", `${rec.name}-www`);
	const drivers = rec.nodes.map(
		(n) => new OverlayDriver({ nodeNetns: n.netns, underlayIp: n.address, prefix: n.netns }),
	);
	const stop = () => destroyRecord(root, rec).catch(() => {});
	process.once("SIGINT", () => void stop().then(() => process.exit(130)));
	process.once("SIGTERM", () => void stop().then(() => process.exit(143)));
	try {
		const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
		const net: NetworkAlloc = ipam.createNetwork({ id: "bench", name: "bench" });
		for (const d of drivers) {
			await d.createNetwork(net);
			await d.setPeers(
				net,
				rec.nodes.map((n) => n.address),
			);
		}
		const task = async (name: string, node: number) => {
			const ns = `tsl-${rec.name}-${name}`;
			await run(["ip", "netns", "add", ns]);
			const addr = ipam.allocateAddress(net.id, name);
			await drivers[node]!.attachTask(net, ns, addr);
			return { ns, addr };
		};
		const a = await task("a", 0);
		const b = await task("b", 1);
		const c = await task("c", 1);
		// Per-endpoint FDB and ARP entries, as the agent programs them from the store.
		const eps = [
			{ address: a.addr, vtep: rec.nodes[0]!.address },
			{ address: b.addr, vtep: rec.nodes[1]!.address },
			{ address: c.addr, vtep: rec.nodes[1]!.address },
		];
		for (const d of drivers) await d.setEndpoints(net, eps);
		const n1 = rec.nodes[0]!;
		const n2 = rec.nodes[1]!;
		const vip1 = ipam.allocateAddress(net.id, "vip:one");
		await drivers[0]!.setVips(net, [{ vip: vip1, backends: [c.addr] }]);
		mkdirSync(www, { recursive: true });
		writeFileSync(join(www, "index.html"), "ok\n");
		for (const t of [b, c]) {
			procs.push(
				spawn("nsenter", [`--net=/run/netns/${t.ns}`, "busybox", "httpd", "-f", "-p", `${t.addr}:80`, "-h", www], {
					stdio: "ignore",
				}),
			);
		}
		const under = {
			gbps: [] as number[],
			cpu: [] as number[],
			rtt: [] as number[],
			rr: [] as number[],
			rps: [] as number[],
		};
		const over = {
			gbps: [] as number[],
			cpu: [] as number[],
			rtt: [] as number[],
			rr: [] as number[],
			vipRps: [] as number[],
		};
		for (let r = 1; r <= ROUNDS; r++) {
			log(`round ${r}/${ROUNDS}: iperf3`);
			const u = await iperf(n1.netns, n2.netns, n2.address);
			const o = await iperf(a.ns, b.ns, b.addr);
			under.gbps.push(u.gbps);
			under.cpu.push(u.cpu);
			over.gbps.push(o.gbps);
			over.cpu.push(o.cpu);
			log(`round ${r}/${ROUNDS}: tcp request/response`);
			under.rr.push(...(await tcpRr(n1.netns, n2.netns, n2.address)));
			over.rr.push(...(await tcpRr(a.ns, b.ns, b.addr)));
			log(`round ${r}/${ROUNDS}: ping`);
			under.rtt.push(...(await rtts(n1.netns, n2.address)));
			over.rtt.push(...(await rtts(a.ns, b.addr)));
			log(`round ${r}/${ROUNDS}: wrk`);
			under.rps.push(await wrk(a.ns, `http://${b.addr}/`));
			over.vipRps.push(await wrk(a.ns, `http://${vip1}/`));
		}
		const addedRr = median(over.rr) - median(under.rr);
		const ours = {
			overlay_gbps: round(median(over.gbps)),
			overlay_cpu_s_per_gb: round(median(over.cpu)),
			overlay_tcp_rr_p50_us: round(median(over.rr), 1),
			overlay_tcp_rr_p99_us: round(pct(over.rr, 99), 1),
			added_tcp_rr_p50_us: round(addedRr, 1),
			overlay_rtt_p50_us: round(median(over.rtt), 1),
			overlay_rtt_p99_us: round(pct(over.rtt, 99), 1),
			added_rtt_p50_us: round(median(over.rtt) - median(under.rtt), 1),
			vip_rps: round(median(over.vipRps), 0),
		};
		const peer = {
			underlay_gbps: round(median(under.gbps)),
			underlay_cpu_s_per_gb: round(median(under.cpu)),
			underlay_tcp_rr_p50_us: round(median(under.rr), 1),
			underlay_tcp_rr_p99_us: round(pct(under.rr, 99), 1),
			underlay_rtt_p50_us: round(median(under.rtt), 1),
			underlay_rtt_p99_us: round(pct(under.rtt, 99), 1),
			direct_rps: round(median(under.rps), 0),
			note: "peer = the underlay (iperf3, TCP request/response, ping between lab nodes) and HTTP straight to the task",
		};
		const ratios = {
			throughput: round(median(over.gbps) / median(under.gbps)),
			// Each round's overlay run against the underlay run just before it (the same noise), and
			// CPU per byte: both steadier on the shared machine than the ratio of medians.
			throughput_paired: round(median(over.gbps.map((g, i) => g / under.gbps[i]!))),
			cpu_per_byte: round(median(over.cpu) / median(under.cpu)),
			tcp_rr_p50: round(median(over.rr) / median(under.rr)),
			rtt_p50: round(median(over.rtt) / median(under.rtt)),
			vip_rps: round(median(over.vipRps) / median(under.rps)),
		};
		log(
			`all rounds: underlay ${under.gbps.map((x) => x.toFixed(2))} Gb/s, overlay ${over.gbps.map((x) => x.toFixed(2))}`,
		);
		// The goals, as booleans (added latency from TCP request/response, not ICMP).
		const goals = {
			throughput_ge_0_9x_underlay: ratios.throughput >= 0.9,
			added_p50_latency_le_50us: addedRr <= 50,
			vip_rate_ge_0_9x_direct: ratios.vip_rps >= 0.9,
		};
		console.log(JSON.stringify({ bench: "overlay", ours, peer, ratios, goals }));
	} finally {
		for (const p of procs) p.kill("SIGKILL");
		for (const d of drivers) await d.close();
		rmSync(www, { recursive: true, force: true });
		await stop();
	}
}

await main();
