// `tsswarm stack deploy` as a command: a refused file exits 1 before any agent is asked (none runs
// here: a file that passes every check fails only on the missing agent), docker's multi-line
// refusal is printed whole, the warnings go to stderr, and a bad --resolve-image is a usage error.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { tempDir } from "../../helpers/index.ts";

const bin = new URL("../../../cli/tsswarm", import.meta.url).pathname;

t.test("stack deploy refuses bad files itself, with docker's words, before talking to an agent", async (t) => {
	const d = tempDir("tsswarm-stack-cmd-");
	t.teardown(d.remove);
	const file = (name: string, text: string) => {
		writeFileSync(join(d.path, name), text);
		return join(d.path, name);
	};
	const run = (...args: string[]) =>
		spawnSync(bin, ["stack", "deploy", "--data-root", join(d.path, "no-agent"), ...args], {
			encoding: "utf8",
			env: { ...process.env, TSSWARM_HOST: "" },
		});
	const forbidden = run(
		"-c",
		file("f.yml", "services:\n  web:\n    image: x\n    mem_limit: 1g\n    extends: base\n"),
		"app",
	);
	t.equal(forbidden.status, 1);
	t.equal(
		forbidden.stderr,
		"tsswarm: compose file contains unsupported options:\n\nextends: Support for `extends` is not implemented yet.\n\nmem_limit: Set resource limits using deploy.resources\n",
	);
	const schema = run(
		"-c",
		file("s.yml", "services:\n  web:\n    image: x\n    deploy: { replicas: 1, bogus: 2 }\n"),
		"app",
	);
	t.equal(schema.status, 1);
	t.match(schema.stderr, /^tsswarm: .*s\.yml: services\.web\.deploy Additional property bogus is not allowed\n$/);
	const ok = run("-c", file("ok.yml", "services:\n  web:\n    image: x\n    build: .\n"), "app");
	t.match(ok.stderr, /^Ignoring unsupported options: build\n/, "a valid file: docker's warning first");
	t.match(ok.stderr, /no agent is running/, "control: a valid file gets as far as the agent");
	const usage = run("--resolve-image", "sometimes", "-c", join(d.path, "ok.yml"), "app");
	t.equal(usage.status, 2);
	t.match(usage.stderr, /invalid --resolve-image "sometimes"/);
	const name = run("-c", join(d.path, "ok.yml"), "bad/name");
	t.equal(name.status, 2);
	t.match(name.stderr, /invalid stack name "bad\/name"/);
});
