// Secrets and configs on a node: written only on a tmpfs (a real one here), with the references'
// owner and mode, bind-mounted read-only, gone when the task ends; data in memory only for tasks
// that use it; the persisted assignments never hold it.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { NodeFiles, realTmpfs } from "../../../agent/worker/files.ts";
import { toContainerSpec } from "../../../agent/worker/index.ts";
import { AssignmentFile } from "../../../agent/worker/persist.ts";
import { tempDir } from "../../helpers/index.ts";
import { makeTask, quiet } from "./fixtures.ts";

const SECRET = "s3cr3t-worker-bytes-4417";

function withRefs(id: string) {
	const task = makeTask({ id, image: "busybox:latest", args: [] });
	task.spec.secrets = [
		{ secretId: "sid1", secretName: "db", target: "db", uid: "1000", gid: "1001", mode: 0o400, version: 2 },
	];
	task.spec.configs = [
		{ configId: "cid1", configName: "app", target: "/etc/app.conf", uid: "0", gid: "0", mode: 0o444, version: 1 },
	];
	return task;
}

const files = [
	{ kind: "secret" as const, id: "sid1", version: 2, data: new Uint8Array(Buffer.from(SECRET)) },
	{ kind: "config" as const, id: "cid1", version: 1, data: new Uint8Array(Buffer.from("port=80\n")) },
];

t.test("files on a real tmpfs with owner and mode, read-only mounts, released with the task", async (t) => {
	const d = tempDir("worker-files-");
	const dir = join(d.path, "worker", "files");
	t.teardown(() => {
		try {
			execFileSync("umount", [dir], { stdio: "ignore" });
		} catch {}
		d.remove();
	});
	const nf = new NodeFiles(dir, quiet);
	const task = withRefs("task1");
	t.throws(() => nf.prepare(task), { code: "ERR_TASK_FILE", message: /secret db \(version 2\) is not on this node/ });
	nf.put(files);
	const mounts = nf.prepare(task);
	t.equal(realTmpfs.isTmpfs(dir), true, "a tmpfs was mounted for them");
	t.same(
		mounts.map((m) => [m.target, m.readonly]),
		[
			["/run/secrets/db", true],
			["/etc/app.conf", true],
		],
	);
	const st = statSync(mounts[0]!.source);
	t.same([st.mode & 0o777, st.uid, st.gid], [0o400, 1000, 1001], "the secret's mode and owner");
	t.equal(readFileSync(mounts[0]!.source, "utf8"), SECRET);
	t.equal(statSync(dir).mode & 0o777, 0o700, "the tmpfs is root's only");
	const spec = toContainerSpec(task, { nodeId: "n1", files: mounts });
	t.same(
		spec.volumes?.filter((v) => v.readonly && v.source.startsWith(dir)).map((v) => v.target),
		["/run/secrets/db", "/etc/app.conf"],
		"bind-mounted read-only into the container",
	);

	// After an agent restart the data is gone from memory, the files are still there: reused.
	const again = new NodeFiles(dir, quiet);
	t.same(
		again.prepare(task).map((m) => m.source),
		mounts.map((m) => m.source),
		"a restarted agent reuses the files on the tmpfs",
	);

	// Data only while a task uses it; files go with their task.
	nf.gc([task]);
	t.equal(nf.held, 2);
	nf.gc([]);
	t.equal(nf.held, 0, "no task uses them: dropped from memory");
	nf.release(task.id);
	t.notOk(existsSync(join(dir, task.id)), "the task's files are gone");
	mkdirSync(join(dir, "orphan1"));
	nf.gc([], true);
	t.same(readdirSync(dir), [], "directories of tasks no longer here go after a complete set");
});

t.test("nothing is written where there is no tmpfs", async (t) => {
	const d = tempDir("worker-files-");
	t.teardown(d.remove);
	const dir = join(d.path, "files");
	const nf = new NodeFiles(dir, quiet, { isTmpfs: realTmpfs.isTmpfs, mount: () => {} });
	nf.put(files);
	t.throws(() => nf.prepare(withRefs("task2")), { code: "ERR_TASK_FILE", message: /is not a tmpfs: refusing/ });
	t.same(readdirSync(dir), [], "no file written");
	// Positive control: the same with a tmpfs writes the files.
	const ok = new NodeFiles(dir, quiet, { isTmpfs: () => true, mount: () => {} });
	ok.put(files);
	t.equal(ok.prepare(withRefs("task2")).length, 2);
	t.same(readdirSync(dir), ["task2"]);
});

t.test("the persisted assignments hold the references, never the data", async (t) => {
	const d = tempDir("worker-files-");
	t.teardown(d.remove);
	const f = new AssignmentFile(d.path);
	f.save({ nodeId: "n1", tasks: [withRefs("task3")], networks: [] });
	const text = readFileSync(f.path, "utf8");
	t.match(text, /"secretName":"db"/, "the reference is kept (positive control)");
	t.notOk(text.includes(SECRET) || text.includes(Buffer.from(SECRET).toString("base64")), "no secret bytes");
});
