// Service specs from users and the wire: defaults as Swarm's, and every refusal names its field.
import t from "tap";
import { DEFAULT_UPDATE, InvalidServiceSpecError, validateServiceSpec } from "../../../agent/services/index.ts";

const minimal = { name: "web", task: { container: { image: "198.18.0.254:5000/httpd:latest" } } };

t.test("a minimal spec gets Swarm's defaults", async (t) => {
	const s = validateServiceSpec(minimal);
	t.same(s.mode, { kind: "replicated", replicas: 1 });
	t.same(s.task.restartPolicy, { condition: "any", delayMs: 5000, maxAttempts: 0, windowMs: 0 });
	t.same(s.update, DEFAULT_UPDATE, "update: parallelism 1, pause, monitor 5 s, stop-first");
	t.same(s.endpoint, { mode: "vip", ports: [] });
	t.same(s.task.container.env, []);
});

t.test("bad specs are refused with the field named", async (t) => {
	const task = minimal.task;
	const cases: Array<[string, unknown, string]> = [
		["negative replicas", { ...minimal, mode: { kind: "replicated", replicas: -1 } }, "mode.replicas"],
		["unknown mode", { ...minimal, mode: { kind: "cron" } }, "mode.kind"],
		["bad name", { ...minimal, name: "a b" }, "name"],
		["no image", { name: "x", task: { container: {} } }, "task.container.image"],
		["bad env", { ...minimal, task: { container: { ...task.container, env: ["NOEQUALS"] } } }, "task.container.env[0]"],
		[
			"relative bind",
			{ ...minimal, task: { container: { ...task.container, mounts: [{ type: "bind", source: "x", target: "/d" }] } } },
			"task.container.mounts[0].source",
		],
		[
			"mount target ..",
			{ ...minimal, task: { container: { ...task.container, mounts: [{ type: "tmpfs", target: "/a/../b" }] } } },
			"task.container.mounts[0].target",
		],
		[
			"restart condition",
			{ ...minimal, task: { ...task, restartPolicy: { condition: "always" } } },
			"task.restartPolicy.condition",
		],
		["port", { ...minimal, endpoint: { ports: [{ targetPort: 70000 }] } }, "endpoint.ports[0].targetPort"],
		[
			"port twice",
			{
				...minimal,
				endpoint: {
					ports: [
						{ targetPort: 80, publishedPort: 8080 },
						{ targetPort: 81, publishedPort: 8080 },
					],
				},
			},
			"endpoint.ports[1]",
		],
		[
			"spread",
			{ ...minimal, task: { ...task, placement: { preferences: [{ spread: "zone" }] } } },
			"task.placement.preferences[0].spread",
		],
		["failure ratio", { ...minimal, update: { maxFailureRatio: 2 } }, "update.maxFailureRatio"],
		[
			"dnsrr with ingress port",
			{ ...minimal, endpoint: { mode: "dnsrr", ports: [{ targetPort: 80, publishedPort: 80 }] } },
			"endpoint.ports",
		],
	];
	for (const [what, spec, field] of cases) {
		const err = (() => {
			try {
				validateServiceSpec(spec);
			} catch (e) {
				return e;
			}
			return undefined;
		})();
		t.ok(err instanceof InvalidServiceSpecError, `${what}: refused`);
		t.equal((err as InvalidServiceSpecError | undefined)?.field, field, `${what}: names ${field}`);
	}
});

t.test("ulimits: kept by name with soft and hard (-1 unlimited); a bad one is refused naming it", async (t) => {
	const withLimits = (ulimits: unknown) => ({
		...minimal,
		task: { container: { ...minimal.task.container, ulimits } },
	});
	const s = validateServiceSpec(
		withLimits([
			{ name: "nofile", soft: 1024, hard: 2048 },
			{ name: "core", soft: -1, hard: -1 },
		]),
	);
	t.same(s.task.container.ulimits, [
		{ name: "nofile", soft: 1024, hard: 2048 },
		{ name: "core", soft: -1, hard: -1 },
	]);
	t.equal(validateServiceSpec(minimal).task.container.ulimits, undefined, "none: absent (older specs stay equal)");
	const bad: Array<[unknown, string]> = [
		[[{ name: "files", soft: 1, hard: 1 }], "task.container.ulimits[0].name"],
		[[{ name: "nofile", soft: 10, hard: 5 }], "task.container.ulimits[0].soft"],
		[[{ name: "nofile", soft: -2, hard: 5 }], "task.container.ulimits[0].soft"],
		[
			[
				{ name: "nproc", soft: 1, hard: 1 },
				{ name: "nproc", soft: 2, hard: 2 },
			],
			"task.container.ulimits[1].name",
		],
	];
	for (const [u, field] of bad) {
		const err = t.throws(() => validateServiceSpec(withLimits(u))) as InvalidServiceSpecError;
		t.equal(err.field, field, `${JSON.stringify(u)}: names ${field}`);
	}
});
