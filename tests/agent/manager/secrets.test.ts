// Secrets and configs on the manager: names and sizes checked (Swarm's 500 KB), secret data only
// ever sealed in the store and the Raft files, removal refused while a service uses one, an update
// that makes a new version and rolls the services using it, and data sent only to the nodes that
// run a task using it.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pack } from "msgpackr";
import t from "tap";
import { newManagerKeys, open } from "../../../agent/keyring/index.ts";
import { DispatchEndpoint } from "../../../agent/manager/index.ts";
import {
	createFileObject,
	fileSource,
	inspectConfig,
	inspectSecret,
	parseData,
	removeFileObject,
	resolveFileRefs,
	updateFileObject,
} from "../../../agent/manager/secrets.ts";
import { createService, removeService } from "../../../agent/manager/services.ts";
import { validateServiceSpec } from "../../../agent/services/index.ts";
import { ClusterStore, MAX_FILE_DATA } from "../../../agent/store/index.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";
import { client, cluster, dispatcher, host, put, quiet, task, template } from "../dispatch/fixtures.ts";

const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");
const PLAIN = "hunter2-the-secret-bytes-7f3a9c";

/** Every file under dir (recursively) holding `needle`. */
function filesWith(dir: string, needle: string): string[] {
	const out: string[] = [];
	for (const f of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
		const p = join(dir, f);
		if (statSync(p).isFile() && readFileSync(p).includes(needle)) out.push(p);
	}
	return out;
}

t.test("data is checked: base64, 1 byte to 500 KB, errors name sizes never content", async (t) => {
	t.equal(parseData("secret", b64("x")).length, 1);
	t.equal(parseData("secret", b64(Buffer.alloc(MAX_FILE_DATA, 1))).length, MAX_FILE_DATA, "exactly 500 KB is allowed");
	t.throws(() => parseData("secret", b64(Buffer.alloc(MAX_FILE_DATA + 1, 1))), {
		code: "ERR_INVALID_SECRET",
		message: /data is 500\.0 KB \(512001 bytes\): at most 500 KB \(512000 bytes\)/,
	});
	t.throws(() => parseData("config", ""), { code: "ERR_INVALID_CONFIG", message: /data is empty/ });
	try {
		parseData("secret", `${b64(PLAIN)}!`);
		t.fail("bad base64 accepted");
	} catch (err) {
		t.match((err as Error).message, /data must be base64/);
		t.notMatch((err as Error).message, /hunter2|aHVudGVy/, "the refusal does not echo the data");
	}
});

t.test("create, seal, refuse removal in use, update rolls, assignment only where used", async (t) => {
	const {
		m,
		ws: [w1, w2],
		store,
	} = await cluster(t, 2);
	const keys = newManagerKeys();
	const k = () => keys;

	// Names as docker's; a taken name is refused.
	await t.rejects(createFileObject(store, "secret", k, { name: "-bad", data: b64("x") }), {
		code: "ERR_INVALID_SECRET",
		message: /name "-bad" must be 1-64 letters/,
	});
	const sec = await createFileObject(store, "secret", k, { name: "db_pass", data: b64(PLAIN), labels: { a: "b" } });
	await t.rejects(createFileObject(store, "secret", k, { name: "db_pass", data: b64("y") }), {
		code: "ERR_NAME_IN_USE",
	});
	const cfg = await createFileObject(store, "config", k, { name: "app.conf", data: b64("listen 80\n") });

	// Sealed in the store: the record holds no clear bytes, opens with the cluster secret and its aad only.
	const rec = store.get("secrets", sec.id)!.value;
	t.equal(rec.versions.length, 1);
	t.notOk(Buffer.from(pack(rec)).includes(PLAIN), "the stored record holds no clear data");
	t.equal(Buffer.from(open(keys.clusterSecret, rec.versions[0]!.sealed, `secret:${sec.id}:1`)).toString(), PLAIN);
	t.throws(() => open(keys.clusterSecret, rec.versions[0]!.sealed, `secret:${sec.id}:2`), { code: "ERR_SEALED_DATA" });
	t.throws(() => open(newManagerKeys().clusterSecret, rec.versions[0]!.sealed, `secret:${sec.id}:1`), {
		code: "ERR_SEALED_DATA",
	});
	// Nor in inspect.
	const shown = JSON.stringify(inspectSecret(sec));
	t.notOk(shown.includes(PLAIN) || shown.includes(b64(PLAIN)), "inspect shows no data");
	t.match(inspectSecret(sec), {
		Spec: { Name: "db_pass", Labels: { a: "b" } },
		DataVersion: 1,
		DataSize: PLAIN.length,
	});
	t.equal(Buffer.from(inspectConfig(cfg).Spec.Data, "base64").toString(), "listen 80\n", "config inspect has its data");

	// A service using both: references resolved by name to ids and the current version.
	const spec = {
		name: "web",
		mode: { kind: "replicated", replicas: 1 },
		task: {
			container: { image: "busybox:latest" },
			secrets: [{ secretName: "db_pass", target: "db", uid: "1000", gid: "1000", mode: 0o400 }],
			configs: [{ configName: "app.conf", target: "/etc/app.conf" }],
		},
	};
	const svc = await createService(store, spec);
	t.match(svc.value.spec.task.secrets, [
		{ secretId: sec.id, secretName: "db_pass", version: 1, mode: 0o400, uid: "1000" },
	]);
	t.match(svc.value.spec.task.configs, [{ configId: cfg.id, target: "/etc/app.conf", version: 1, mode: 0o444 }]);
	await t.rejects(
		createService(store, { ...spec, name: "web2", task: { ...spec.task, secrets: [{ secretName: "nope" }] } }),
		{ code: "ERR_NOT_FOUND", message: /secret nope not found/ },
	);

	// In use: refused, naming the service.
	await t.rejects(removeFileObject(store, "secret", "db_pass"), {
		code: "ERR_SECRET_IN_USE",
		message: "secret db_pass is in use by the following service: web",
	});
	await t.rejects(removeFileObject(store, "config", cfg.id), { code: "ERR_CONFIG_IN_USE" });

	// Same data: nothing changes. New data: version 2, and the service gets a new spec version.
	const same = await updateFileObject(store, "secret", k, { ref: "db_pass", data: b64(PLAIN) });
	t.same(same.services, [], "the same data is no new version");
	t.equal(store.get("services", svc.id)!.value.specVersion, 1);
	const NEW = "second-secret-value-91b2";
	const up = await updateFileObject(store, "secret", k, { ref: sec.id.slice(0, 6), data: b64(NEW) });
	t.same(up.services, ["web"], "the service using it rolls");
	t.equal(up.value.version, 2);
	t.same(
		up.value.versions.map((v) => v.version),
		[1, 2],
		"version 1 is kept: the previous spec still uses it",
	);
	const rolled = store.get("services", svc.id)!.value;
	t.equal(rolled.specVersion, 2, "a new spec version (the updater rolls it)");
	t.equal(rolled.updateStatus?.state, "updating");
	t.equal(rolled.spec.task.secrets![0]!.version, 2, "its reference carries the new version");
	t.equal(rolled.previousSpec?.task.secrets?.[0]?.version, 1);
	t.equal(inspectSecret(up).DataVersion, 2);

	// Assignments: w1 runs a task of the service, w2 one without secrets. Only w1 gets data.
	const used = task(w1.h.peerId, { spec: rolled.spec.task, serviceId: svc.id });
	const other = task(w2.h.peerId, { spec: template() });
	await put(store, "tasks", used.id, used);
	await put(store, "tasks", other.id, other);
	const errors: Error[] = [];
	const e = new DispatchEndpoint({
		host: m.h,
		store,
		logger: quiet,
		files: fileSource(store, k, (err) => errors.push(err)),
	});
	await e.start();
	t.teardown(() => e.stop());
	await dispatcher(t, e, { heartbeatMs: 1000 });
	const one = client(t, w1, [m]);
	const two = client(t, w2, [m]);
	await waitFor("both connected", () => one.sink.isConnected && two.sink.isConnected);
	const f1 = one.sink.fulls()[0]!;
	t.same(
		(f1.files ?? []).map((f) => [f.kind, f.id, f.version, Buffer.from(f.data).toString()]),
		[
			["secret", sec.id, 2, NEW],
			["config", cfg.id, 1, "listen 80\n"],
		],
		"w1 gets the opened secret and the config its task uses",
	);
	t.same(two.sink.fulls()[0]!.files ?? [], [], "w2 runs no task using them: no data");
	t.same(errors, []);
	// A new task of w1 with the same references: the data is not sent again in this session.
	const before = one.sink.got.length;
	const again = task(w1.h.peerId, { spec: rolled.spec.task, serviceId: svc.id });
	await put(store, "tasks", again.id, again);
	await waitFor("the second task arrives", () => one.sink.tasks.has(again.id));
	t.same(
		one.sink.got.slice(before).flatMap((a) => a.files ?? []),
		[],
		"each version once per session",
	);

	// Service gone: the secret can go.
	await removeService(store, svc.id);
	const rm = await removeFileObject(store, "secret", "db_pass");
	t.equal(rm.id, sec.id);
	t.notOk(store.get("secrets", sec.id), "removed");
});

t.test("references: validated in the spec, resolved by name, bad ones named", async (t) => {
	const task0 = { container: { image: "busybox:latest" } };
	const v = (task: Record<string, unknown>) => validateServiceSpec({ name: "s", task: { ...task0, ...task } });
	t.same(v({}).task.secrets, undefined, "no references: no field (older specs stay equal)");
	const s = v({ secrets: [{ secretName: "a" }], configs: [{ configName: "c" }] }).task;
	t.same(s.secrets, [{ secretId: "", secretName: "a", target: "a", uid: "0", gid: "0", mode: 0o444, version: 0 }]);
	t.same(s.configs?.[0]?.target, "/c", "a config's default target is /NAME");
	t.same(v({ secrets: [{ secretName: "a", uid: 1000 }] }).task.secrets?.[0]?.uid, "1000", "a numeric uid is taken");
	t.throws(() => v({ secrets: [{ secretName: "a", target: "../x" }] }), { message: /task\.secrets\[0\]\.target/ });
	t.same(v({ configs: [{ configName: "c", target: "etc/c.conf" }] }).task.configs?.[0]?.target, "/etc/c.conf");
	t.throws(() => v({ secrets: [{ secretName: "a", mode: 0o1777 }] }), { message: /secrets\[0\]\.mode/ });
	t.throws(() => v({ secrets: [{ secretName: "a" }, { secretName: "b", target: "a" }] }), {
		message: /\/run\/secrets\/a is given twice/,
	});
	t.throws(() => v({ secrets: [{ secretName: "a", bogus: 1 }] }), { message: /bogus.*not a known field/ });
	t.throws(() => v({ secrets: [{ secretName: "a", uid: "root" }] }), { message: /uid.*numeric/ });
});

t.test("the Raft files hold no secret in the clear", async (t) => {
	const m = await host(t);
	const d = tempDir("tsswarm-secrets-raft-");
	t.teardown(d.remove);
	const store = await ClusterStore.open({ dir: join(d.path, "raft"), node: m.h.node, clusterId: "c1", logger: quiet });
	await store.bootstrap();
	await store.start();
	t.teardown(() => store.stop());
	await store.waitForLeader(10_000);
	const keys = newManagerKeys();
	await createFileObject(store, "secret", () => keys, { name: "s", data: b64(PLAIN) });
	await updateFileObject(store, "secret", () => keys, { ref: "s", data: b64(`${PLAIN}-2`) });
	// Positive control: the search finds the bytes where they are.
	writeFileSync(join(d.path, "control"), `x${PLAIN}x`);
	t.same(filesWith(d.path, PLAIN), [join(d.path, "control")], "only the control file holds the secret's bytes");
	t.ok(readdirSync(join(d.path, "raft"), { recursive: true }).length > 2, "there are Raft files to search");
});

t.test("a spec's references are resolved to the object's id, name and a version it keeps", async (t) => {
	const { store } = await cluster(t, 0);
	const keys = newManagerKeys();
	const sec = await createFileObject(store, "secret", () => keys, { name: "s", data: b64("1") });
	const spec = validateServiceSpec({
		name: "x",
		task: { container: { image: "busybox:latest" }, secrets: [{ secretName: "s", version: 7 }] },
	});
	t.match(
		resolveFileRefs(store, spec).task.secrets,
		[{ secretId: sec.id, version: 1 }],
		"a version not kept: the current one",
	);
	t.equal(
		resolveFileRefs(store, validateServiceSpec({ name: "y", task: { container: { image: "b" } } })).task.secrets,
		undefined,
	);
});
