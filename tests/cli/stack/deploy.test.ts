// stack deploy against an in-memory agent (the StackApi a real one serves): every invalid file or
// conflict is refused before the first write (with a positive control that writes), a re-deploy
// updates only what changed, --prune removes what left the file, depends_on service_healthy waits
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: compose's ${VAR} syntax is what these strings hold
// (with a deadline), --resolve-image decides what is pinned, and stack rm removes only its stack.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import type { NetworkInspect, ServiceRecord, ServiceRow, TaskRow } from "../../../agent/api/index.ts";
import { checkPorts } from "../../../agent/manager/allocator/index.ts";
import { validatePlacement } from "../../../agent/manager/scheduler/index.ts";
import { type ServiceSpec, validateServiceSpec } from "../../../agent/services/index.ts";
import { loadCompose } from "../../../cli/stack/compose/load.ts";
import { planStack } from "../../../cli/stack/convert.ts";
import {
	type DeployOptions,
	deployStack,
	type ObjectInfo,
	removeStack,
	type StackApi,
} from "../../../cli/stack/deploy.ts";
import { ComposeError, StackDependencyTimeoutError } from "../../../cli/stack/errors.ts";
import { planObjects } from "../../../cli/stack/objects.ts";
import { tempDir } from "../../helpers/index.ts";

/** The agent's side, in memory: specs validated as the manager does, writes recorded. */
class FakeAgent implements StackApi {
	writes: string[] = [];
	nets: NetworkInspect[] = [];
	svcs: ServiceRecord[] = [];
	objs: Array<ObjectInfo & { kind: string; data: string }> = [];
	/** service name -> its tasks (a test sets their state). */
	taskRows = new Map<string, TaskRow[]>();
	/** service name -> the raw spec last sent (what the agent's validator would see, secrets and all). */
	raw = new Map<string, Record<string, unknown>>();
	private n = 0;
	private id = () => `id${++this.n}`.padEnd(25, "0");

	async networks() {
		return this.nets;
	}
	async createNetwork(r: { name: string; labels?: Record<string, string> }) {
		this.writes.push(`network create ${r.name}`);
		const n = { Name: r.name, Id: this.id(), Labels: r.labels ?? {} } as NetworkInspect;
		this.nets.push(n);
		return n;
	}
	async removeNetwork(ref: string) {
		this.writes.push(`network rm ${this.nets.find((n) => n.Id === ref)!.Name}`);
		this.nets = this.nets.filter((n) => n.Id !== ref);
		return {};
	}
	async services(): Promise<ServiceRow[]> {
		return this.svcs.map((s) => ({ id: s.id, name: s.value.spec.name }) as ServiceRow);
	}
	find(ref: string): ServiceRecord {
		const s = this.svcs.find((x) => x.id === ref || x.value.spec.name === ref);
		if (!s) throw Object.assign(new Error(`service ${ref} not found`), { status: 404 });
		return s;
	}
	async inspect(ref: string) {
		return structuredClone(this.find(ref));
	}
	async validate(raw: Record<string, unknown>) {
		const spec = validateServiceSpec(raw);
		validatePlacement({ placement: spec.task.placement });
		checkPorts(this.svcs, spec);
		return spec;
	}
	async create(raw: Record<string, unknown>) {
		const spec = validateServiceSpec(raw);
		this.raw.set(spec.name, raw);
		this.writes.push(`service create ${spec.name}`);
		const now = new Date().toISOString();
		const r: ServiceRecord = {
			id: this.id(),
			version: 1,
			createdIndex: 1,
			value: { id: "", spec, specVersion: 1, createdAt: now, updatedAt: now },
		};
		r.value.id = r.id;
		this.svcs.push(r);
		return r;
	}
	async update(ref: string, raw: Record<string, unknown>, version: number) {
		const cur = this.find(ref);
		if (cur.version !== version) throw new Error("version conflict");
		const spec: ServiceSpec = validateServiceSpec(raw);
		if (JSON.stringify(spec) === JSON.stringify(cur.value.spec)) return structuredClone(cur);
		this.writes.push(
			`service update ${spec.name}${JSON.stringify(spec.task) !== JSON.stringify(cur.value.spec.task) ? " (rolls)" : ""}`,
		);
		cur.value = { ...cur.value, spec, previousSpec: cur.value.spec };
		cur.version++;
		return structuredClone(cur);
	}
	async remove(ref: string) {
		const s = this.find(ref);
		this.writes.push(`service rm ${s.value.spec.name}`);
		this.svcs = this.svcs.filter((x) => x !== s);
		return {};
	}
	async tasks(ref: string) {
		return this.taskRows.get(this.find(ref).value.spec.name) ?? [];
	}
	async objects(kind: string) {
		return this.objs.filter((o) => o.kind === kind);
	}
	async createObject(kind: string, o: { name: string; data: string; labels: Record<string, string> }) {
		this.writes.push(`${kind} create ${o.name}`);
		const x = { kind, id: this.id(), ...o };
		this.objs.push(x);
		return x;
	}
	async updateObject(kind: string, ref: string, o: { data: string; labels: Record<string, string> }) {
		const x = this.objs.find((y) => y.id === ref)!;
		this.writes.push(`${kind} update ${x.name}`);
		Object.assign(x, o);
		return x;
	}
	async removeObject(kind: string, ref: string) {
		this.writes.push(`${kind} rm ${this.objs.find((y) => y.id === ref)!.name}`);
		this.objs = this.objs.filter((y) => y.id !== ref);
		return {};
	}
}

type Tap = { teardown(fn: () => unknown): void };

/** load + plan + deploy, as `stack deploy -c FILE app` does, against `agent`. */
function deployer(t: Tap, agent: FakeAgent) {
	const d = tempDir("tsswarm-stack-deploy-");
	t.teardown(d.remove);
	mkdirSync(d.path, { recursive: true });
	writeFileSync(join(d.path, "secret.txt"), "pw\n");
	const resolved: string[] = [];
	const run = async (yaml: string, o: Partial<DeployOptions> = {}, env: Record<string, string> = {}) => {
		const file = join(d.path, "compose.yml");
		writeFileSync(file, yaml);
		const loaded = loadCompose({ files: [file], env });
		const plan = planStack("app", loaded, (p) => readFileSync(p, "utf8"));
		const objects = planObjects("app", loaded, (p) => readFileSync(p));
		return deployStack(agent, plan, objects, {
			out: () => {},
			resolve: async (image) => {
				resolved.push(image);
				return { image: `${image}@sha256:${"a".repeat(64)}`, platforms: [{ os: "linux", architecture: "amd64" }] };
			},
			pollMs: 10,
			...o,
		});
	};
	return { run, resolved };
}

const BASE = `
services:
  web:
    image: httpd:1
    ports: ["8080:80"]
    networks: [front]
    secrets: [pw]
    deploy: { replicas: 2 }
  worker:
    image: busybox
    command: sleep 1000
    networks: [front]
networks:
  front: {}
secrets:
  pw:
    file: ./secret.txt
`;

t.test("a first deployment creates networks, secrets and services, named and labelled for the stack", async (t) => {
	const agent = new FakeAgent();
	const { run } = deployer(t, agent);
	const r = await run(BASE);
	t.same(agent.writes, [
		"network create app_front",
		"secret create app_pw",
		"service create app_web",
		"service create app_worker",
	]);
	t.same(r.created, ["app_web", "app_worker"]);
	const web = agent.find("app_web").value.spec;
	t.equal(web.labels["com.docker.stack.namespace"], "app");
	t.equal(web.task.container.image, `httpd:1@sha256:${"a".repeat(64)}`, "the image is pinned");
	t.same((agent.raw.get("app_web")!.task as { secrets: unknown }).secrets, [
		{ secretId: agent.objs[0]!.id, secretName: "app_pw", target: "pw", uid: "0", gid: "0", mode: 0o444 },
	]);
	t.equal(agent.nets[0]!.Labels["com.docker.stack.namespace"], "app");
});

const EXT = BASE.replace("sleep 1000\n    networks: [front]", "sleep 1000\n    networks: [front, ext]").replace(
	"networks:\n  front: {}",
	"networks:\n  front: {}\n  ext:\n    external: true",
);

t.test("each invalid file or conflict is refused before anything changes", async (t) => {
	const none = () => {};
	const bad: Array<[string, string, RegExp, (a: FakeAgent) => void]> = [
		["yaml", "services:\n  web:\n   image: x\n  ports: [1\n", /compose\.yml:\d+:\d+: /, none],
		[
			"schema",
			BASE.replace("replicas: 2", "replicas: 2, bogus: 1"),
			/services\.web\.deploy Additional property bogus/,
			none,
		],
		["interpolation", BASE.replace("httpd:1", "httpd:${TAG:?TAG is required}"), /required variable TAG/, none],
		[
			"forbidden key",
			BASE.replace("image: busybox", "image: busybox\n    cpu_shares: 5"),
			/compose file contains unsupported options/,
			none,
		],
		[
			"undefined network",
			BASE.replace("networks: [front]\n    secrets", "networks: [nope]\n    secrets"),
			/undefined network "nope"/,
			none,
		],
		["undefined secret", BASE.replace("secrets: [pw]", "secrets: [nope]"), /undefined secret "nope"/, none],
		["unsupported version", `version: "2"\n${BASE}`, /unsupported Compose file version: 2/, none],
		[
			"a field the agent refuses, in the last service",
			BASE.replace("command: sleep 1000", "command: sleep 1000\n    cap_add: [NOT-A-CAP]"),
			/service worker: .*task\.container\.capAdd\[0\].*is not a capability/,
			none,
		],
		[
			"a published port another service holds",
			BASE,
			/service web: .*8080/,
			(a) =>
				void a.create({
					name: "elsewhere",
					task: { container: { image: "x" } },
					endpoint: { ports: [{ targetPort: 80, publishedPort: 8080 }] },
				}),
		],
		[
			"one published port for two services of the file",
			BASE.replace("command: sleep 1000", 'command: sleep 1000\n    ports: ["8080:81"]'),
			/services web and worker both publish 8080\/tcp/,
			none,
		],
		[
			"a placement constraint the agent refuses",
			BASE.replace(
				"command: sleep 1000",
				"command: sleep 1000\n    deploy:\n      placement:\n        constraints: [node.colour==red]",
			),
			/service worker: .*node\.colour/,
			none,
		],
		["missing external network", EXT, /network "ext" is declared as external, but could not be found/, none],
		[
			"a network of the same name outside the stack",
			BASE,
			/network app_front already exists and is not part of stack app/,
			(a) => a.nets.push({ Name: "app_front", Id: "n0", Labels: {} } as unknown as NetworkInspect),
		],
		[
			"a service of the same name outside the stack",
			BASE,
			/service app_worker already exists and is not part of stack app/,
			(a) => void a.create({ name: "app_worker", task: { container: { image: "x" } } }),
		],
		[
			"a service's mode changed",
			BASE.replace("deploy: { replicas: 2 }", "deploy: { mode: global }"),
			/service app_web: its mode cannot change from replicated to global/,
			(a) =>
				void a.create({
					name: "app_web",
					labels: { "com.docker.stack.namespace": "app" },
					task: { container: { image: "x" } },
				}),
		],
	];
	for (const [what, yaml, want, before] of bad) {
		const agent = new FakeAgent();
		before(agent);
		agent.writes = [];
		const err = await deployer(t, agent)
			.run(yaml)
			.then(
				() => undefined,
				(e: Error) => e,
			);
		t.type(err, ComposeError, `${what}: refused`);
		t.match(err?.message, want, `${what}: ${err?.message.split("\n")[0]}`);
		t.same(agent.writes, [], `${what}: nothing written`);
	}
	const agent = new FakeAgent();
	agent.nets.push({ Name: "ext", Id: "n0", Labels: {} } as unknown as NetworkInspect);
	await deployer(t, agent).run(EXT);
	t.equal(agent.writes.length, 4, "control: with the external network there, the same file deploys");
	t.same(
		agent.find("app_worker").value.spec.task.networks.map((n) => n.target),
		["app_front", "ext"],
	);
});

t.test("a re-deploy updates only the changed service; --prune removes what left the file", async (t) => {
	const agent = new FakeAgent();
	const { run, resolved } = deployer(t, agent);
	await run(BASE);
	agent.writes = [];
	const same = await run(BASE);
	t.same(
		agent.writes,
		["secret update app_pw"],
		"the same file again: no service written (the secret's data is sent again)",
	);
	t.same(same.unchanged, ["app_web", "app_worker"]);
	const changed = await run(BASE.replace("command: sleep 1000", "command: sleep 2000"));
	t.same(changed.updated, ["app_worker"]);
	t.same(changed.unchanged, ["app_web"]);
	t.ok(agent.writes.includes("service update app_worker (rolls)"), "only the worker rolls");
	t.notOk(
		agent.writes.some((w) => w.startsWith("service update app_web")),
		"web is not written",
	);
	const scaled = await run(BASE.replace("replicas: 2", "replicas: 3").replace("sleep 1000", "sleep 2000"));
	t.same(scaled.updated, ["app_web"]);
	t.ok(agent.writes.includes("service update app_web"), "replicas: an update that does not roll");

	const without = BASE.replace(/ {2}worker:\n( {4}.*\n)+/, "");
	agent.writes = [];
	const kept = await run(without);
	t.same(kept.removed, [], "without --prune the worker stays");
	t.ok(agent.find("app_worker"));
	const pruned = await run(without, { prune: true });
	t.same(pruned.removed, ["app_worker"]);
	t.same(
		agent.svcs.map((s) => s.value.spec.name),
		["app_web"],
	);

	resolved.length = 0;
	await run(BASE, { resolveImage: "never" });
	t.same(resolved, [], "--resolve-image never: nothing resolved");
	t.equal(agent.find("app_worker").value.spec.task.container.image, "busybox", "the image as written");
	await run(BASE.replace("image: busybox", "image: busybox:2"), { resolveImage: "changed" });
	t.same(resolved, ["busybox:2"], "--resolve-image changed: only the image that changed is resolved");
	t.equal(agent.find("app_web").value.spec.task.container.image, "httpd:1", "web keeps what it had");
	t.match(agent.find("app_worker").value.spec.task.container.image, /^busybox:2@sha256:/);
	await run(BASE.replace("image: busybox", "image: busybox:2"));
	t.same(resolved, ["busybox:2", "httpd:1", "busybox:2"], "always (the default): every image");
});

t.test(
	"depends_on service_healthy: the dependent is created once the dependency is healthy, or not at all",
	async (t) => {
		const yaml = `
services:
  db:
    image: db
    healthcheck: { test: "true", interval: 1s }
  web:
    image: web
    depends_on:
      db: { condition: service_healthy }
`;
		const row = (health?: "starting" | "healthy") =>
			({ id: "t1", desiredState: "running", state: "running", ...(health ? { health } : {}) }) as TaskRow;
		const agent = new FakeAgent();
		agent.taskRows.set("app_db", [row("starting")]);
		const err = await deployer(t, agent)
			.run(yaml, { dependencyTimeoutMs: 300 })
			.then(
				() => undefined,
				(e: Error) => e,
			);
		t.type(err, StackDependencyTimeoutError);
		t.match(
			err?.message,
			/service web waits for app_db to be healthy .* after 0 s it is 0 of 1 tasks running and healthy/,
		);
		t.same(
			agent.svcs.map((s) => s.value.spec.name),
			["app_db"],
			"web was not created",
		);

		const agent2 = new FakeAgent();
		agent2.taskRows.set("app_db", [row("starting")]);
		const order: string[] = [];
		setTimeout(() => {
			order.push("db healthy");
			agent2.taskRows.set("app_db", [row("healthy")]);
		}, 200);
		const p = deployer(t, agent2).run(yaml, { out: (l) => order.push(l) });
		await p;
		t.same(order, [
			"Creating network app_default",
			"Creating service app_db",
			"Waiting for app_db to be healthy (depends_on of web)",
			"db healthy",
			"Creating service app_web",
		]);
		agent2.writes = [];
		agent2.taskRows.set("app_db", []);
		await deployer(t, agent2).run(yaml, { dependencyTimeoutMs: 100 });
		t.same(agent2.writes, [], "a re-deploy does not wait: web exists already");
	},
);

t.test("stack rm removes the stack's services, secrets and networks, and nothing of another stack", async (t) => {
	const agent = new FakeAgent();
	await deployer(t, agent).run(BASE);
	const other = await agent.create({
		name: "other_web",
		labels: { "com.docker.stack.namespace": "other" },
		task: { container: { image: "x" } },
	});
	await agent.createNetwork({ name: "other_default", labels: { "com.docker.stack.namespace": "other" } });
	agent.writes = [];
	const n = await removeStack(agent, "app", () => {});
	t.equal(n, 4);
	t.same(agent.writes, ["service rm app_web", "service rm app_worker", "secret rm app_pw", "network rm app_front"]);
	t.same(
		agent.svcs.map((s) => s.id),
		[other.id],
		"control: the other stack's service is there",
	);
	t.same(
		agent.nets.map((x) => x.Name),
		["other_default"],
	);
	t.equal(await removeStack(agent, "app", () => {}), 0, "again: nothing found");
});
