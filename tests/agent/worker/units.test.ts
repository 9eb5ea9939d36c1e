// The worker's pure parts: TaskTemplate -> ContainerSpec, the assignments file (named errors for a
// file it did not write), Docker's capability rule in the runtime spec.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import {
	AssignmentsFileError,
	LABEL_NODE_ID,
	LABEL_SERVICE_NAME,
	LABEL_TASK_ID,
	toContainerSpec,
} from "../../../agent/worker/index.ts";
import { AssignmentFile } from "../../../agent/worker/persist.ts";
import { DEFAULT_CAPS, effectiveCaps, InvalidSpecError } from "../../../runtime/index.ts";
import { tempDir } from "../../helpers/index.ts";
import { makeTask } from "./fixtures.ts";

t.test("a task template becomes the runtime's container spec", async (t) => {
	const task = makeTask({
		id: "abc123",
		service: "web",
		slot: 2,
		image: "reg.example/web:1",
		args: ["-p", "80"],
		container: {
			command: ["/bin/httpd"],
			env: ["A=1"],
			labels: { team: "x" },
			mounts: [
				{ type: "bind", source: "/srv/data", target: "/data", readOnly: true },
				{ type: "volume", source: "cache", target: "/cache" },
				{ type: "volume", target: "/anon" },
				{ type: "tmpfs", target: "/scratch" },
			],
			user: "nobody",
			workdir: "/w",
			hostname: "h",
			readOnly: true,
			capAdd: ["NET_ADMIN"],
			capDrop: ["MKNOD"],
			ulimits: [{ name: "nofile", soft: 1024, hard: 2048 }],
			healthcheck: { test: ["CMD", "true"], intervalMs: 1500, timeoutMs: 700, retries: 0, startPeriodMs: 2000 },
		},
	});
	task.spec.resources.limits = { nanoCpus: 1_500_000_000, memoryBytes: 64 << 20 };
	const s = toContainerSpec(task, { nodeId: "n1", platform: "linux/arm64", network: "/run/netns/x", resolvConf: "/r" });
	t.equal(s.name, "web.2.abc123");
	t.same(s.entrypoint, ["/bin/httpd"], "command is the entrypoint (docker's --entrypoint)");
	t.same(s.cmd, ["-p", "80"]);
	t.equal(s.cpus, 1.5);
	t.equal(s.memory, 64 << 20);
	t.same(s.volumes, [
		{ source: "/srv/data", target: "/data", readonly: true },
		{ source: "cache", target: "/cache" },
		{ source: "abc123-2", target: "/anon" },
		{ source: "/r", target: "/etc/resolv.conf", readonly: true },
	]);
	t.same(s.tmpfs, ["/scratch"]);
	t.same(
		s.healthcheck,
		{ test: ["CMD", "true"], interval: 1500, timeout: 700, startPeriod: 2000 },
		"retries 0 = default",
	);
	t.same(s.capAdd, ["CAP_NET_ADMIN"]);
	t.same(s.capDrop, ["CAP_MKNOD"]);
	t.same(s.ulimits, [{ name: "nofile", soft: 1024, hard: 2048 }], "ulimits pass through");
	t.equal(s.network, "/run/netns/x");
	t.equal(s.platform, "linux/arm64");
	t.match(s.labels, { team: "x", [LABEL_SERVICE_NAME]: "web", [LABEL_TASK_ID]: "abc123", [LABEL_NODE_ID]: "n1" });
	t.equal(s.readOnly, true);
	t.same([s.user, s.workdir, s.hostname, s.env], ["nobody", "/w", "h", ["A=1"]]);
});

t.test("capabilities: Docker's default set, minus drops, plus adds; ALL both ways; unknown refused", async (t) => {
	t.same(effectiveCaps(), DEFAULT_CAPS);
	t.notOk(effectiveCaps([], ["CAP_MKNOD"]).includes("CAP_MKNOD"));
	t.ok(effectiveCaps(["net_admin"]).includes("CAP_NET_ADMIN"), "names without CAP_, any case");
	t.same(effectiveCaps(["NET_RAW"], ["ALL"]), ["CAP_NET_RAW"]);
	t.ok(effectiveCaps(["ALL"]).includes("CAP_SYS_ADMIN"));
	t.throws(() => effectiveCaps(["CAP_FLY"]), InvalidSpecError);
});

t.test("the assignments file: round trip; a file it did not write is a named error", async (t) => {
	const d = tempDir("worker-file-");
	t.teardown(d.remove);
	const f = new AssignmentFile(d.path);
	t.equal(f.load("n1"), undefined, "none yet");
	const task = makeTask({ image: "busybox", args: ["true"] });
	f.save({ nodeId: "n1", tasks: [task], networks: [] });
	t.same(f.load("n1")?.tasks, [task]);
	t.throws(() => f.load("n2"), AssignmentsFileError, "another node's file");
	writeFileSync(join(d.path, "worker", "assignments.json"), "{ torn");
	t.throws(() => f.load("n1"), /not JSON/);
	writeFileSync(join(d.path, "worker", "assignments.json"), JSON.stringify({ version: 9 }));
	t.throws(() => f.load("n1"), /not a version 1/);
});
