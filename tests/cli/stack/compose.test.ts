// Reading compose files as stack deploy does: interpolation (every form, errors naming the key),
// .env beside the first file, YAML errors with line:column, schema errors naming the key path,
// docker's refused and ignored keys with its wording, anchors and x- extensions, and -c merging.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: compose's ${VAR} syntax is what these strings hold
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { substitute, TemplateError } from "../../../cli/stack/compose/interpolate.ts";
import { loadCompose } from "../../../cli/stack/compose/load.ts";
import {
	ComposeForbiddenError,
	ComposeInterpolationError,
	ComposeSchemaError,
	ComposeUnsupportedError,
	ComposeYamlError,
} from "../../../cli/stack/errors.ts";
import { tempDir } from "../../helpers/index.ts";

/** Files in a fresh directory; returns their paths (first one's dir is the working dir). */
function files(t: { teardown(fn: () => unknown): void }, contents: Record<string, string>): string[] {
	const d = tempDir("tsswarm-stack-");
	t.teardown(d.remove);
	mkdirSync(d.path, { recursive: true });
	return Object.entries(contents).map(([name, text]) => {
		writeFileSync(join(d.path, name), text);
		return join(d.path, name);
	});
}

const svc = (config: Record<string, unknown>, name: string) =>
	(config.services as Record<string, Record<string, unknown>>)[name]!;

t.test("interpolation: every form of ${...}, $$, and errors", async (t) => {
	const env = { SET: "v", EMPTY: "" };
	t.equal(substitute("a $SET b ${SET}", env), "a v b v");
	t.equal(substitute("${UNSET:-d} ${EMPTY:-d} ${SET:-d}", env), "d d v", ":- takes the default when unset or empty");
	t.equal(substitute("${UNSET-d} [${EMPTY-d}] ${SET-d}", env), "d [] v", "- only when unset");
	t.equal(substitute("${SET:+alt} [${EMPTY:+alt}] [${UNSET+alt}] ${EMPTY+alt}", env), "alt [] [] alt");
	t.equal(substitute("$$SET $${SET} cost: $$5", env), "$SET ${SET} cost: $5", "$$ is a literal $");
	t.equal(substitute("${UNSET:-${SET}-x}", env), "v-x", "a default is interpolated itself");
	t.equal(substitute("[$UNSET]", env), "[]", "an unset variable is empty");
	t.equal(substitute("${SET:?must}", env), "v");
	t.throws(
		() => substitute("${EMPTY:?EMPTY is needed}", env),
		/required variable EMPTY is missing a value: EMPTY is needed/,
	);
	t.equal(substitute("${EMPTY?x}", env), "", "? only when unset");
	t.throws(() => substitute("${UNSET?x}", env), TemplateError);
	t.throws(() => substitute("${SET", env), /not closed/);
	t.throws(() => substitute("${1abc}", env), /variable name/);
	t.throws(() => substitute("${SET:x}", env), /not a substitution/);
	t.throws(() => substitute("a $ b", env), /escape any \$ with another \$/);
});

t.test("the environment over .env beside the first file; errors name file and key path", async (t) => {
	const [main] = files(t, {
		"compose.yml": "services:\n  web:\n    image: ${REG}/httpd:${TAG:-latest}\n    environment:\n      MODE: ${MODE}\n",
		".env": "# comment\nREG=from-dotenv\nexport TAG='1.0'\nMODE=\"dot env\"\n",
	});
	const l = loadCompose({ files: [main!], env: { MODE: "from-env" } });
	t.equal(svc(l.config, "web").image, "from-dotenv/httpd:1.0", ".env supplies REG and TAG");
	t.same(svc(l.config, "web").environment, { MODE: "from-env" }, "the environment wins over .env");
	const [bad] = files(t, { "compose.yml": "services:\n  web:\n    image: ${NEED:?set NEED to the image}\n" });
	const err = t.throws(() => loadCompose({ files: [bad!], env: {} })) as Error;
	t.type(err, ComposeInterpolationError);
	t.match(
		err.message,
		/compose\.yml: invalid interpolation format for services\.web\.image: required variable NEED is missing a value: set NEED to the image/,
	);
	t.doesNotThrow(() => loadCompose({ files: [bad!], env: { NEED: "busybox" } }), "control: with NEED set it loads");
});

t.test("a YAML error names the file, line and column", async (t) => {
	const [f] = files(t, { "compose.yml": "services:\n  web:\n    image: busybox\n   ports: [80\n" });
	const err = t.throws(() => loadCompose({ files: [f!], env: {} })) as Error;
	t.type(err, ComposeYamlError);
	t.match(err.message, /compose\.yml:4:1: All mapping items must start at the same column$/);
	const [dup] = files(t, { "compose.yml": "services:\n  web:\n    image: a\n    image: b\n" });
	t.match(
		(t.throws(() => loadCompose({ files: [dup!], env: {} })) as Error).message,
		/compose\.yml:4:5: .*[Mm]ap keys must be unique/,
	);
});

t.test("a schema error names the key path", async (t) => {
	const cases: Array<[string, RegExp]> = [
		[
			"services:\n  web:\n    image: x\n    deploy:\n      replicass: 2\n",
			/services\.web\.deploy Additional property replicass is not allowed/,
		],
		["services:\n  web:\n    image: x\n    imagee: y\n", /services\.web Additional property imagee is not allowed/],
		[
			"services:\n  web:\n    image: x\n    deploy:\n      resources:\n        limits:\n          cpus: [1]\n",
			/services\.web\.deploy\.resources\.limits\.cpus must be a number or string/,
		],
		["services:\n  web:\n    image: [x]\n", /services\.web\.image must be a string/],
		[
			"services:\n  web:\n    image: x\n    ports:\n      - target: 80\n        publishd: 8080\n",
			/services\.web\.ports\.0 Additional property publishd is not allowed/,
		],
		[
			"networks:\n  front:\n    drivr: overlay\nservices: {}\n",
			/networks\.front Additional property drivr is not allowed/,
		],
	];
	for (const [yaml, want] of cases) {
		const [f] = files(t, { "compose.yml": yaml });
		const err = t.throws(() => loadCompose({ files: [f!], env: {} })) as Error;
		t.type(err, ComposeSchemaError);
		t.match(err.message, want);
	}
	const [ok] = files(t, { "compose.yml": "services:\n  web:\n    image: x\n    deploy:\n      replicas: 2\n" });
	t.doesNotThrow(() => loadCompose({ files: [ok!], env: {} }), "control: the right spelling loads");
	const [v2] = files(t, { "compose.yml": 'version: "2.4"\nservices:\n  web:\n    image: x\n' });
	t.match(
		(t.throws(() => loadCompose({ files: [v2!], env: {} })) as Error).message,
		/unsupported Compose file version: 2\.4/,
	);
	t.type(
		t.throws(() => loadCompose({ files: [v2!], env: {} })),
		ComposeUnsupportedError,
	);
});

t.test("keys docker refuses are refused in its words; keys it ignores are warned", async (t) => {
	const [f] = files(t, {
		"compose.yml": "services:\n  web:\n    image: x\n    cpu_shares: 10\n    mem_limit: 1g\n",
	});
	const err = t.throws(() => loadCompose({ files: [f!], env: {} })) as ComposeForbiddenError;
	t.type(err, ComposeForbiddenError);
	t.equal(
		err.message,
		"compose file contains unsupported options:\n\ncpu_shares: Set resource limits using deploy.resources\n\nmem_limit: Set resource limits using deploy.resources\n",
	);
	const [w] = files(t, {
		"compose.yml":
			"services:\n  web:\n    image: x\n    build: .\n    privileged: true\n    restart: always\n    container_name: web1\n    dns: 1.1.1.1\n    x-mine: 1\n",
	});
	const l = loadCompose({ files: [w!], env: {} });
	t.equal(l.warnings[0], "Ignoring unsupported options: build, privileged, restart\n");
	t.match(
		l.warnings[1],
		/^Ignoring deprecated options:\n\ncontainer_name: Setting the container name is not supported\./,
	);
	t.equal(l.warnings[2], "Ignoring options tsswarm does not support yet: services.web.dns\n", "x- keys are not warned");
	const [clean] = files(t, { "compose.yml": "services:\n  web:\n    image: x\n" });
	t.same(loadCompose({ files: [clean!], env: {} }).warnings, [], "control: a plain file warns nothing");
});

t.test("anchors, merge keys and x- extensions", async (t) => {
	const [f] = files(t, {
		"compose.yml": `x-defaults: &defaults
  image: busybox
  environment: &env
    A: "1"
  deploy:
    replicas: 2
services:
  a:
    <<: *defaults
  b:
    <<: *defaults
    environment:
      <<: *env
      B: "2"
    deploy:
      replicas: 3
`,
	});
	const l = loadCompose({ files: [f!], env: {} });
	t.equal(svc(l.config, "a").image, "busybox");
	t.same(svc(l.config, "a").deploy, { replicas: 2 });
	t.same(svc(l.config, "b").environment, { A: "1", B: "2" });
	t.same(svc(l.config, "b").deploy, { replicas: 3 });
	t.ok("x-defaults" in l.config, "the extension stays at the top (ignored by conversion)");
	t.same(svc(l.config, "a").environment, { A: "1" }, "b's override did not change a's shared anchor");
});

t.test("several -c files merge as docker merges them", async (t) => {
	const [base, over] = files(t, {
		"base.yml": `services:
  web:
    image: httpd:1
    command: ["httpd", "-f"]
    environment: [A=1, B=2]
    labels: { tier: web }
    ports: ["8080:80", "9090:90"]
    volumes: ["data:/data", "/etc/a:/a:ro"]
    cap_add: [NET_ADMIN]
    networks: [front]
    deploy:
      replicas: 1
      placement:
        constraints: [node.role==manager]
  db:
    image: db:1
networks:
  front: {}
volumes:
  data: {}
`,
		"override.yml": `services:
  web:
    image: httpd:2
    command: httpd -v
    environment: { B: "3", C: "4" }
    ports: ["8080:8000"]
    volumes: ["other:/data"]
    cap_add: [SYS_TIME]
    networks:
      back: { aliases: [w] }
    deploy:
      replicas: 3
      placement:
        constraints: [node.labels.zone==a]
  cache:
    image: cache:1
networks:
  back: {}
volumes:
  other: {}
`,
	});
	const l = loadCompose({ files: [base!, over!], env: {} });
	const web = svc(l.config, "web");
	t.equal(web.image, "httpd:2", "a scalar: the later file's");
	t.equal(web.command, "httpd -v", "command is replaced, not appended");
	t.same(web.environment, { A: "1", B: "3", C: "4" }, "environment: merged by name");
	t.same(web.labels, { tier: "web" });
	t.same(
		(web.ports as Array<{ published: number; target: number }>).map((p) => `${p.published}:${p.target}`),
		["8080:8000", "9090:90"],
		"ports: keyed by published port",
	);
	t.same(
		(web.volumes as Array<{ source: string; target: string }>).map((v) => `${v.source}:${v.target}`),
		["other:/data", "/etc/a:/a"],
		"volumes: keyed by target",
	);
	t.same(web.cap_add, ["NET_ADMIN", "SYS_TIME"], "other lists: appended");
	t.same(Object.keys(web.networks as object), ["front", "back"]);
	t.same(web.deploy, { replicas: 3, placement: { constraints: ["node.role==manager", "node.labels.zone==a"] } });
	t.same(Object.keys(l.config.services as object).sort(), ["cache", "db", "web"], "services of both files");
	t.same(Object.keys(l.config.networks as object), ["front", "back"]);
	t.same(Object.keys(l.config.volumes as object), ["data", "other"]);
});
