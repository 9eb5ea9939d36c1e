// A task with a secret and a config under real runc: inside the container the secret is at
// /run/secrets/TARGET with its mode and owner, on tmpfs, read-only; the config at its path; the
// node's data dir holds the bytes only on the tmpfs; a shut-down task's files are gone.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { LABEL_TASK_ID } from "../../../agent/worker/index.ts";
import { uniqueName, waitFor } from "../../helpers/index.ts";
import { withRegistry } from "../../helpers/registry.ts";
import { fileRuntime } from "../../helpers/runtime.ts";
import { dataDir, makeTask, startWorker } from "./fixtures.ts";

const { rt } = fileRuntime("wfiles");
let image = "";
t.before(async () => {
	const reg = await withRegistry(t);
	image = `${reg.hostPort}/busybox:latest`;
});

const SECRET = `pw-${uniqueName("x")}-in-runc`;

/** Files under dir holding `needle`, not descending into mount points other than dir's own. */
function filesWith(dir: string, needle: string, skip: string): string[] {
	const out: string[] = [];
	for (const f of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
		const p = join(dir, f);
		if (p.startsWith(skip)) continue;
		let st: ReturnType<typeof statSync>;
		try {
			st = statSync(p);
		} catch {
			continue;
		}
		if (st.isFile() && readFileSync(p).includes(needle)) out.push(p);
	}
	return out;
}

t.test("secret and config files in a running container", async (t) => {
	const root = dataDir();
	const filesDir = join(root, "worker", "files");
	t.teardown(() => {
		try {
			execFileSync("umount", ["-l", filesDir], { stdio: "ignore" });
		} catch {}
	});
	const nodeId = uniqueName("node");
	const { worker, last } = await startWorker(t, rt, { dataRoot: root, nodeId });
	worker.setConnected(true);
	const task = makeTask({
		image,
		args: [
			"sh",
			"-c",
			"stat -c '%a %u %g' /run/secrets/db; cat /run/secrets/db; echo; cat /etc/app.conf; echo; grep -E ' /run/secrets/db | /etc/app.conf ' /proc/mounts; echo > /run/secrets/db || echo READONLY; sleep 300",
		],
	});
	task.spec.secrets = [
		{ secretId: "sid1", secretName: "db", target: "db", uid: "1000", gid: "1000", mode: 0o400, version: 1 },
	];
	task.spec.configs = [
		{ configId: "cid1", configName: "app", target: "/etc/app.conf", uid: "0", gid: "0", mode: 0o444, version: 1 },
	];
	await worker.assign({
		full: true,
		tasks: [task],
		networks: [],
		files: [
			{ kind: "secret", id: "sid1", version: 1, data: new Uint8Array(Buffer.from(SECRET)) },
			{ kind: "config", id: "cid1", version: 1, data: new Uint8Array(Buffer.from("listen=8080")) },
		],
	});
	await waitFor("running", () => last(task.id)?.state === "running", { timeoutMs: 60_000 });
	const c = rt.list({ all: true }).find((x) => x.spec.labels?.[LABEL_TASK_ID] === task.id)!;
	let out = "";
	await waitFor(
		"the container printed what it sees",
		() => {
			out = rt.logs(c.id).stdout;
			return out.includes("READONLY");
		},
		{ timeoutMs: 30_000 },
	);
	const lines = out.split("\n");
	t.equal(lines[0], "400 1000 1000", "mode 0400, owner 1000:1000");
	t.equal(lines[1], SECRET, "the secret's content");
	t.equal(lines[2], "listen=8080", "the config at its path");
	t.match(out, /^\S+ \/run\/secrets\/db tmpfs ro[, ]/m, "the secret is on a read-only tmpfs mount");
	t.match(out, /^\S+ \/etc\/app\.conf tmpfs ro[, ]/m, "the config too");

	// On the node: the bytes are on the tmpfs (positive control) and nowhere else in the data dir.
	t.equal(filesWith(filesDir, SECRET, "/nonexistent").length, 1, "the tmpfs holds the secret's file");
	t.same(filesWith(root, SECRET, filesDir), [], "no other file under the data dir holds the secret");

	// Shut down: the task's files are gone from the node.
	await worker.assign({ full: false, tasks: [{ ...task, desiredState: "shutdown" }], networks: [] });
	await waitFor("shut down", () => last(task.id)?.state === "shutdown", { timeoutMs: 30_000 });
	t.notOk(existsSync(join(filesDir, task.id)), "the node's copy is gone");
	t.same(filesWith(root, SECRET, "/nonexistent"), [], "nowhere on the node now");
});
