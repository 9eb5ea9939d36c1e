// The driver on a real host (nodeNetns unset): run in a child process inside a namespace the test
// made, standing in for the host, with a 9000-byte-MTU underlay device (a veth: this kernel has no dummy module).
import { spawn } from "node:child_process";
import { join } from "node:path";
import t from "tap";
import { run } from "../../cli/lab/index.ts";
import { Allocator, MESH_TABLE } from "../../overlay-net/index.ts";
import { uniqueName } from "../helpers/index.ts";
import { serveHttp, waitForPage } from "./http.ts";

t.test("with nodeNetns unset the driver works in its own namespace (a real host)", async (t) => {
	const host = uniqueName("tsovh");
	const task = uniqueName("tsovt");
	const prefix = uniqueName("tsovp");
	const procs: number[] = [];
	t.teardown(async () => {
		for (const pid of procs) {
			try {
				process.kill(pid, "SIGKILL");
			} catch {}
		}
		const all = (await run(["ip", "netns", "list"])).stdout.split("\n").map((l) => l.split(" ")[0]!);
		for (const ns of all.filter((n) => n.startsWith(prefix) || n === host || n === task))
			await run(["ip", "netns", "delete", ns], { allowFailure: true });
	});
	await run(["ip", "netns", "add", host]);
	await run(["ip", "netns", "add", task]);
	await run(["ip", "-n", host, "-batch", "-"], {
		input:
			"link set lo up\nlink add under0 mtu 9000 type veth peer name under1 mtu 9000\nlink set under1 up\naddr add 198.18.77.1/24 dev under0\nlink set under0 up\n",
	});
	const ipam = new Allocator({ pools: ["198.19.0.0/16"] });
	ipam.createNetwork({ id: "app", name: "app" });
	ipam.createNetwork({ id: "ingress", name: "ingress", ingress: true });
	const child = spawn(
		"nsenter",
		[
			`--net=/run/netns/${host}`,
			process.execPath,
			join(import.meta.dirname, "host-child.ts"),
			"198.18.77.1",
			prefix,
			task,
			JSON.stringify(ipam.toJSON()),
		],
		{ stdio: ["ignore", "pipe", "pipe"] },
	);
	procs.push(child.pid!);
	let out = "";
	let err = "";
	child.stdout!.on("data", (d: Buffer) => {
		out += d;
	});
	child.stderr!.on("data", (d: Buffer) => {
		err += d;
	});
	const code = await new Promise<number | null>((r) => child.once("close", r));
	t.equal(code, 0, `the driver programs a host namespace without errors ${err.trim()}`);
	const got = JSON.parse(out.trim() || "{}") as { node: string; appAddr: string; ingressAddr: string; mtu: number };
	t.equal(got.mtu, 8950, "the VXLAN MTU follows the underlay device's own MTU (9000 - 50)");
	const links = (await run(["ip", "-n", host, "-o", "link", "show"])).stdout;
	t.match(links, /ovi\d+/, "the node's ingress endpoint is in the host namespace");
	t.match(links, /ovh\d+/, "and the egress veth of the app network");
	const ifs = (await run(["ip", "-n", task, "-o", "-4", "addr", "show"])).stdout;
	t.match(ifs, new RegExp(`eth0\\s+inet ${got.appAddr}/`), "the task has its app address");
	t.match(ifs, new RegExp(`eth1\\s+inet ${got.ingressAddr}/`), "and its ingress address");
	t.match((await run(["nsenter", `--net=/run/netns/${host}`, "nft", "list", "tables"])).stdout, MESH_TABLE);
	// The routing mesh, on the "host": its own address, port 8080, goes to the task's port 80.
	serveHttp(t, task, got.ingressAddr, "from the task\n");
	const page = await waitForPage(
		"the published port to answer on the host's address",
		host,
		"http://198.18.77.1:8080/",
	);
	t.match(page, "from the task");
	const ping = await run(["ip", "netns", "exec", host, "ping", "-c", "1", "-W", "2", got.appAddr], {
		allowFailure: true,
	});
	t.equal(ping.code, 0, "the host reaches the task on the app network through the egress link");
});
