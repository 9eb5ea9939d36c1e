// Compose services as service specs: every supported key lands in the spec the agent validates
// (validateServiceSpec accepts each result), names and labels are the stack's, references to
// undeclared networks/volumes/secrets/configs/services are refused, and secrets/configs become
// the objects to create and the task template's entries.
import t from "tap";
import { validateServiceSpec } from "../../../agent/services/index.ts";
import type { LoadedCompose } from "../../../cli/stack/compose/load.ts";
import { parseYaml } from "../../../cli/stack/compose/load.ts";
import { mergeFiles } from "../../../cli/stack/compose/merge.ts";
import { type Dict, normalizeService } from "../../../cli/stack/compose/normalize.ts";
import { planStack, shellSplit } from "../../../cli/stack/convert.ts";
import { ComposeError, ComposeReferenceError, ComposeUnsupportedError } from "../../../cli/stack/errors.ts";
import { planObjects } from "../../../cli/stack/objects.ts";

/** A file as loadCompose leaves it (normalized), with a working dir and the variables given. */
function loaded(yaml: string, env: Record<string, string> = {}): LoadedCompose {
	const d = parseYaml(yaml, "compose.yml");
	const services = Object.fromEntries(
		Object.entries((d.services ?? {}) as Dict).map(([k, s]) => [k, normalizeService(s as Dict, "compose.yml", k)]),
	);
	return { config: mergeFiles([{ ...d, services }]), workingDir: "/srv/app", env, warnings: [] };
}

const files: Record<string, string> = { "/srv/app/web.env": "FROM_FILE=1\nBOTH=file\n", "/srv/app/s.txt": "s3cret\n" };
const read = (p: string) => {
	if (!(p in files)) throw Object.assign(new Error(`ENOENT: no such file, open '${p}'`), { code: "ENOENT" });
	return files[p]!;
};
const plan = (yaml: string, env?: Record<string, string>) => planStack("app", loaded(yaml, env), read);

const FULL = `
services:
  web:
    image: 198.18.0.254:5000/httpd:latest
    entrypoint: ["/bin/httpd"]
    command: -f -p 80 -h "/var/www dir"
    environment:
      MODE: prod
      BOTH: env
      FROM_HOST:
    env_file: web.env
    ports:
      - "8080:80"
      - target: 443
        published: 8443
        mode: host
      - "53:53/udp"
    volumes:
      - data:/data
      - ./conf:/etc/conf:ro
      - /var/log
      - type: tmpfs
        target: /scratch
    tmpfs: /run
    networks:
      front:
        aliases: [www]
      back:
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://localhost/"]
      interval: 5s
      timeout: 2s
      retries: 3
      start_period: 1m
    user: "1000:1000"
    working_dir: /srv
    hostname: web-host
    read_only: true
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    ulimits:
      nproc: 65535
      nofile: { soft: 20000, hard: 40000 }
    stop_grace_period: 1m30s
    stop_signal: SIGTERM
    labels:
      tier: front
    deploy:
      mode: replicated
      replicas: 3
      endpoint_mode: vip
      labels: [owner=ops]
      placement:
        constraints: [node.role==worker, node.labels.zone==a]
        preferences: [{ spread: node.labels.rack }]
        max_replicas_per_node: 2
      resources:
        limits: { cpus: "0.5", memory: 256M }
        reservations: { cpus: "0.25", memory: 64M }
      restart_policy:
        condition: on-failure
        delay: 10s
        max_attempts: 5
        window: 2m
      update_config:
        parallelism: 2
        delay: 10s
        failure_action: rollback
        monitor: 30s
        max_failure_ratio: 0.2
        order: start-first
      rollback_config:
        parallelism: 0
        order: stop-first
  worker:
    image: busybox
    command: ["sh", "-c", "sleep 1000"]
    deploy:
      mode: global
      endpoint_mode: dnsrr
    healthcheck:
      disable: true
networks:
  front:
    driver: overlay
    attachable: true
    labels: { team: web }
    ipam:
      config: [{ subnet: 10.20.0.0/24 }]
  back:
    external: true
    name: shared-back
volumes:
  data: {}
`;

t.test("every supported key lands in a spec the agent accepts", async (t) => {
	const p = plan(FULL, { FROM_HOST: "host" });
	t.same(
		p.services.map((s) => s.name),
		["app_web", "app_worker"],
	);
	const web = validateServiceSpec(p.services[0]!.spec);
	const c = web.task.container;
	t.equal(web.name, "app_web");
	t.same(web.labels, {
		owner: "ops",
		"com.docker.stack.namespace": "app",
		"com.docker.stack.image": "198.18.0.254:5000/httpd:latest",
	});
	t.same(web.mode, { kind: "replicated", replicas: 3 });
	t.same(c.command, ["/bin/httpd"], "entrypoint is the container's command");
	t.same(c.args, ["-f", "-p", "80", "-h", "/var/www dir"], "command is split like a shell");
	t.same(
		c.env,
		["BOTH=env", "FROM_FILE=1", "FROM_HOST=host", "MODE=prod"],
		"env_file, then environment; bare names from the environment",
	);
	t.same(c.labels, { tier: "front", "com.docker.stack.namespace": "app" });
	t.same(c.mounts, [
		{ type: "volume", target: "/data", source: "app_data" },
		{ type: "bind", target: "/etc/conf", source: "/srv/app/conf", readOnly: true },
		{ type: "volume", target: "/var/log" },
		{ type: "tmpfs", target: "/scratch" },
		{ type: "tmpfs", target: "/run" },
	]);
	t.same(c.healthcheck, {
		test: ["CMD", "wget", "-q", "-O-", "http://localhost/"],
		intervalMs: 5000,
		timeoutMs: 2000,
		retries: 3,
		startPeriodMs: 60_000,
	});
	t.equal(c.user, "1000:1000");
	t.equal(c.workdir, "/srv");
	t.equal(c.hostname, "web-host");
	t.equal(c.readOnly, true);
	t.same(c.capAdd, ["CAP_NET_ADMIN"]);
	t.same(c.capDrop, ["ALL"]);
	t.same(c.ulimits, [
		{ name: "nofile", soft: 20000, hard: 40000 },
		{ name: "nproc", soft: 65535, hard: 65535 },
	]);
	t.equal(c.stopGracePeriodMs, 90_000);
	t.equal(c.stopSignal, "SIGTERM");
	t.same(
		web.task.networks,
		[
			{ target: "app_front", aliases: ["web", "www"] },
			{ target: "shared-back", aliases: ["web"] },
		],
		"stack networks are STACK_NAME, external ones keep their name; the service's name is an alias",
	);
	t.same(web.task.placement.constraints, ["node.role==worker", "node.labels.zone==a"]);
	t.same(web.task.placement.preferences, [{ spread: "node.labels.rack" }]);
	t.equal(web.task.placement.maxReplicasPerNode, 2);
	t.same(web.task.resources, {
		limits: { nanoCpus: 500_000_000, memoryBytes: 256 << 20 },
		reservations: { nanoCpus: 250_000_000, memoryBytes: 64 << 20 },
	});
	t.same(web.task.restartPolicy, { condition: "on-failure", delayMs: 10_000, maxAttempts: 5, windowMs: 120_000 });
	t.match(web.update, {
		parallelism: 2,
		delayMs: 10_000,
		failureAction: "rollback",
		monitorMs: 30_000,
		maxFailureRatio: 0.2,
		order: "start-first",
	});
	t.match(web.rollback, { parallelism: 0, order: "stop-first" });
	t.same(web.endpoint, {
		mode: "vip",
		ports: [
			{ protocol: "tcp", targetPort: 80, publishMode: "ingress", publishedPort: 8080 },
			{ protocol: "tcp", targetPort: 443, publishMode: "host", publishedPort: 8443 },
			{ protocol: "udp", targetPort: 53, publishMode: "ingress", publishedPort: 53 },
		],
	});
	const worker = validateServiceSpec(p.services[1]!.spec);
	t.same(worker.mode, { kind: "global" });
	t.equal(worker.endpoint.mode, "dnsrr");
	t.same(worker.task.container.healthcheck, { test: ["NONE"] }, "healthcheck.disable");
	t.same(worker.task.container.args, ["sh", "-c", "sleep 1000"]);
	t.same(worker.task.networks, [{ target: "app_default", aliases: ["worker"] }], "no networks: the stack's default");
	t.same(
		p.networks.map((n) => [n.key, n.name, n.external]),
		[
			["back", "shared-back", true],
			["default", "app_default", false],
			["front", "app_front", false],
		],
	);
	t.same(p.networks[2]!.create, {
		name: "app_front",
		driver: "overlay",
		labels: { team: "web", "com.docker.stack.namespace": "app" },
		attachable: true,
		subnet: "10.20.0.0/24",
	});
	t.same(p.notices, [], "nothing in this file is ignored");
});

t.test("references to what the file does not declare are refused, naming them", async (t) => {
	const cases: Array<[string, RegExp]> = [
		["services:\n  web:\n    image: x\n    networks: [nope]\n", /service web: undefined network "nope"/],
		["services:\n  web:\n    image: x\n    volumes: ['nope:/data']\n", /service web: undefined volume "nope"/],
		["services:\n  web:\n    image: x\n    depends_on: [db]\n", /service web depends on undefined service "db"/],
	];
	for (const [yaml, want] of cases) t.match((t.throws(() => plan(yaml)) as Error).message, want);
	t.type(
		t.throws(() => plan(cases[0]![0])),
		ComposeReferenceError,
	);
	t.match(
		(
			t.throws(() =>
				plan("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n"),
			) as Error
		).message,
		/depends_on has a cycle: a -> b -> a/,
	);
	t.match(
		(t.throws(() => plan("services:\n  web:\n    command: x\n")) as Error).message,
		/invalid image reference for service web: no image specified/,
	);
	t.match(
		(
			t.throws(() =>
				plan("services:\n  web:\n    image: x\n    deploy:\n      mode: global\n      replicas: 2\n"),
			) as Error
		).message,
		/replicas can only be used with replicated or replicated-job mode/,
	);
	t.type(
		t.throws(() => plan("services:\n  web:\n    image: x\nnetworks:\n  default:\n    driver: bridge\n")),
		ComposeUnsupportedError,
	);
	t.match(
		(t.throws(() => plan("services:\n  web:\n    image: x\n    stop_grace_period: soon\n")) as Error).message,
		/services\.web\.stop_grace_period "soon"/,
	);
	t.type(
		t.throws(() => plan("services:\n  web:\n    image: x\n    env_file: missing.env\n")),
		ComposeError,
	);
	t.doesNotThrow(
		() => plan("services:\n  web:\n    image: x\n    env_file: web.env\n"),
		"control: a file that is there",
	);
});

t.test("depends_on orders services: dependencies first", async (t) => {
	const p = plan(
		"services:\n  a:\n    image: x\n    depends_on:\n      db: { condition: service_healthy }\n  db:\n    image: x\n  z:\n    image: x\n",
	);
	t.same(
		p.services.map((s) => s.key),
		["db", "a", "z"],
	);
	t.same(p.services[1]!.dependsOn, { db: "service_healthy" });
});

t.test("what tsswarm ignores inside supported keys is noticed by path", async (t) => {
	const p = plan(
		"services:\n  web:\n    image: x\n    ports: ['127.0.0.1:8080:80']\n    deploy:\n      resources:\n        limits: { pids: 10 }\n",
	);
	t.same(p.notices, [
		"services.web.deploy.resources.limits.pids: ignored",
		"services.web.ports[0].host_ip: ignored: a published port listens on every address",
	]);
});

t.test("secrets and configs: objects named for the stack, task entries with target/uid/gid/mode", async (t) => {
	const l = loaded(`
services:
  web:
    image: x
    secrets:
      - db_pass
      - source: api_key
        target: api.txt
        uid: "100"
        gid: "101"
        mode: 0400
    configs:
      - source: site
        target: /etc/site.conf
        mode: 0444
secrets:
  db_pass:
    file: ./s.txt
  api_key:
    external: true
configs:
  site:
    content: "hello"
  unused:
    content: "never planned"
`);
	const o = planObjects("app", l, (p) => Buffer.from(read(p)));
	t.same(
		o.objects.map((x) => [x.kind, x.name, x.external, x.data?.toString()]),
		[
			["secret", "app_db_pass", false, "s3cret\n"],
			["secret", "api_key", true, undefined],
			["config", "app_site", false, "hello"],
		],
		"only used objects; external ones keep their name",
	);
	t.same(o.objects[0]!.labels, { "com.docker.stack.namespace": "app" });
	t.same(
		o.uses.get("web"),
		[
			{ kind: "secret", name: "app_db_pass", target: "db_pass", uid: "0", gid: "0", mode: 0o444 },
			{ kind: "secret", name: "api_key", target: "api.txt", uid: "100", gid: "101", mode: 0o400 },
			{ kind: "config", name: "app_site", target: "/etc/site.conf", uid: "0", gid: "0", mode: 0o444 },
		],
		"0400 is octal, as docker reads it",
	);
	t.match(
		(
			t.throws(() =>
				planObjects("app", loaded("services:\n  web:\n    image: x\n    secrets: [nope]\n"), () => Buffer.alloc(0)),
			) as Error
		).message,
		/service web: undefined secret "nope"/,
	);
	t.match(
		(
			t.throws(() =>
				planObjects(
					"app",
					loaded("services:\n  web:\n    image: x\n    configs: [c]\nconfigs:\n  c:\n    file: ./none\n"),
					(p) => Buffer.from(read(p)),
				),
			) as Error
		).message,
		/configs\.c\.file: ENOENT/,
	);
});

t.test("shell words", async (t) => {
	t.same(shellSplit(`sh -c 'echo "a b"; exit 1'`), ["sh", "-c", 'echo "a b"; exit 1']);
	t.same(shellSplit(`a\\ b "c\\"d" ''`), ["a b", 'c"d', ""]);
	t.throws(() => shellSplit(`echo 'open`), /unterminated quote/);
});
