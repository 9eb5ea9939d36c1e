// Services reach each other across a real 3-node cluster: from inside a task on the node that runs
// no web replica, `web` resolves to its VIP and `tasks.web` to both replicas, the VIP spreads over
// both, port 8080 answers on that node (routing mesh), and a killed replica leaves DNS, the VIP and
// the mesh within a deadline.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import t from "tap";
import { waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";
import { cli, hostsVia, liveRunning, resolveIn, servicePs, type TaskRow } from "../helpers/services.ts";

t.test(
	"service DNS and VIP reach every replica across nodes; the published port answers on a node that runs none",
	async (t) => {
		const lab = await withLab(t, { nodes: 3, cluster: true, registry: true });
		const reg = lab.registryUrl!.replace(/^http:\/\//, "");
		const sw = (node: string, args: string[]) => cli(lab, node, args);
		await sw("n1", ["network", "create", "--driver", "overlay", "app"]);
		const subnet = JSON.parse(await sw("n1", ["network", "inspect", "app"]))[0].IPAM.Config[0].Subnet as string;
		const appPrefix = subnet.split(".").slice(0, 3).join(".");
		// A long restart delay: the killed replica's slot stays empty while the test looks.
		await sw("n1", [
			"service",
			"create",
			"--name",
			"web",
			"--replicas",
			"2",
			"--network",
			"app",
			"--publish",
			"8080:80",
			"--restart-delay",
			"120s",
			`${reg}/httpd:latest`,
		]);
		const running = async (svc: string) => liveRunning(await servicePs(lab, "n1", svc));
		const webs = await waitFor(
			"two web replicas running",
			async () => {
				const r = await running("web");
				return r.length === 2 ? r : undefined;
			},
			{ timeoutMs: 60_000 },
		);
		const free = lab.nodes.find((n) => !webs.some((w) => w.node === n.name))!;
		t.ok(free, `one node runs no web replica (${free?.name})`);
		t.not(webs[0]!.node, webs[1]!.node, "the replicas are spread over two nodes");

		// Each replica's address on app, as its namespace has it (PREFIX-t-TASKID), and its hostname.
		const netnsOf = (taskId: string) => readdirSync("/run/netns").find((n) => n.endsWith(`-t-${taskId}`))!;
		const appAddr = async (w: TaskRow) => {
			const r = await lab.exec(w.node, ["ip", "-n", netnsOf(w.id), "-4", "-o", "addr", "show"]);
			return r.stdout.match(new RegExp(`${appPrefix.replaceAll(".", "\\.")}\\.\\d+`))![0];
		};
		const addrs = await Promise.all(webs.map(appAddr));
		const hostOf = async (w: TaskRow) => (await sw(w.node, ["exec", `${w.name}.${w.id}`, "hostname"])).trim();
		const hostnames = await Promise.all(webs.map(hostOf));
		t.equal(new Set(hostnames).size, 2, `two replicas, two hostnames (${hostnames.join(", ")})`);
		const vip = (
			JSON.parse(await sw("n1", ["service", "inspect", "web"]))[0].value.endpoint.vips as Array<{ addr: string }>
		)
			.map((v) => v.addr.split("/")[0]!)
			.find((a) => a.startsWith(`${appPrefix}.`))!;
		t.ok(vip, `web has a VIP on app (${vip})`);

		// A client task on the node that runs no replica.
		await sw("n1", [
			"service",
			"create",
			"--name",
			"client",
			"--network",
			"app",
			"--constraint",
			`node.hostname==${free.name}`,
			`${reg}/busybox:latest`,
			"sleep",
			"600",
		]);
		const [cl] = await waitFor(
			"the client running",
			async () => {
				const r = await running("client");
				return r.length === 1 ? r : undefined;
			},
			{ timeoutMs: 60_000 },
		);
		t.equal(cl!.node, free.name, "the client runs on the node without web");
		// The workers' kernel objects carry the lab node's name, so the lab's teardown (and the sweep
		// after a killed run) removes them; under any other name they would outlive the lab.
		const netns = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
		t.match(netns, new RegExp(`^tsl-${lab.name}-n\\d-ov\\d+`, "m"), "overlay sandboxes are named for their lab node");
		t.match(netns, new RegExp(`^tsl-${lab.name}-n\\d-t-`, "m"), "and so are task namespaces");
		const inClient = (cmd: string) => lab.tsswarm(free.name, ["exec", `${cl!.name}.${cl!.id}`, "sh", "-c", cmd]);
		const resolve = (name: string) => resolveIn(inClient, name);
		t.same(await waitFor("web resolves", () => resolve("web"), { timeoutMs: 20_000 }), [vip], "web -> its VIP");
		t.same(await resolve("tasks.web"), [...addrs].sort(), "tasks.web -> both replicas' addresses");
		t.same(await resolve("nosuchservice"), undefined, "control: a name that is no service does not resolve");
		const viaVip = (n: number) => hostsVia(inClient, "http://web/", n);
		const seen = await waitFor(
			"the VIP reaches both replicas",
			async () => {
				const s = await viaVip(4);
				return hostnames.every((h) => s.includes(h)) ? s : undefined;
			},
			{ timeoutMs: 30_000 },
		);
		t.ok(
			seen.every((h) => hostnames.includes(h)),
			`over the VIP: ${seen.join(", ")}`,
		);

		// The routing mesh: port 8080 on the free node, asked from another lab node.
		const other = lab.nodes.find((n) => n !== free)!;
		const curl = async (port: number) => {
			const r = await lab.exec(other.name, ["curl", "-sS", "--max-time", "3", `http://${free.address}:${port}/`]);
			return /hello from (\w+)/.exec(r.stdout)?.[1];
		};
		const mesh = await waitFor(
			"8080 on the free node",
			async () => {
				const s = [await curl(8080), await curl(8080), await curl(8080), await curl(8080)];
				return hostnames.every((h) => s.includes(h)) ? s : undefined;
			},
			{ timeoutMs: 30_000 },
		);
		t.ok(mesh, `port 8080 on ${free.name} (no replica) reaches both: ${mesh.join(", ")}`);
		t.equal(await curl(8081), undefined, "control: 8081 is not published");

		// Kill one replica (its processes, from the host): it leaves DNS, the VIP and the mesh.
		const [dead, alive] = [webs[0]!, webs[1]!];
		const pids = (await lab.exec(dead.node, ["ip", "netns", "pids", netnsOf(dead.id)])).stdout.trim().split(/\s+/);
		t.ok(pids.length > 0 && pids[0] !== "", "the replica's processes are found");
		const killedAt = Date.now();
		for (const p of pids) process.kill(Number(p), "SIGKILL");
		const aliveHost = hostnames[1]!;
		await waitFor(
			"tasks.web without the killed replica",
			async () => JSON.stringify(await resolve("tasks.web")) === JSON.stringify([addrs[1]]),
			{ timeoutMs: 15_000 },
		);
		t.pass(`the killed replica left DNS in ${Date.now() - killedAt} ms`);
		t.same(await resolve("web"), [vip], "web still resolves to its VIP");
		t.same(await viaVip(4), [aliveHost, aliveHost, aliveHost, aliveHost], "the VIP only reaches the survivor");
		t.same(
			[await curl(8080), await curl(8080), await curl(8080), await curl(8080)],
			[aliveHost, aliveHost, aliveHost, aliveHost],
			"the mesh only reaches the survivor",
		);
		t.equal(
			(await running("web")).map((r) => r.id).join(),
			alive.id,
			"one replica left running (the slot waits 120 s)",
		);
	},
);
