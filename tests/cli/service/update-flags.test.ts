// `service update` flags on the current spec: docker's add/rm pairs, the policy flags, and
// refusals that name the flag; the agent's validator accepts every result.
import t from "tap";
import { validateServiceSpec } from "../../../agent/services/index.ts";
import { UsageError } from "../../../cli/errors.ts";
import { applyUpdateFlags, policyFromFlags } from "../../../cli/service/update-flags.ts";
import { noUpdateFlags as none } from "./fixtures.ts";

const current = validateServiceSpec({
	name: "web",
	labels: { team: "a", old: "x" },
	mode: { kind: "replicated", replicas: 2 },
	task: {
		container: {
			image: "busybox@sha256:aaaa",
			args: ["sleep", "1"],
			env: ["A=1", "B=2"],
			labels: { c: "1" },
			mounts: [{ type: "tmpfs", target: "/tmp" }],
			capAdd: ["NET_ADMIN"],
		},
		placement: { constraints: ["node.role==manager"], preferences: [{ spread: "node.labels.zone" }] },
	},
	endpoint: { ports: [{ targetPort: 80, publishedPort: 8080 }] },
});

t.test("add and rm pairs change only what they name", async (t) => {
	const s = applyUpdateFlags(current as unknown as Record<string, unknown>, {
		...none,
		image: "httpd",
		args: "sleep 60",
		replicas: "5",
		envAdd: ["B=3", "C=4"],
		envRm: ["A"],
		labelAdd: ["new=y"],
		labelRm: ["old"],
		containerLabelRm: ["c"],
		mountRm: ["/tmp"],
		mountAdd: ["type=tmpfs,target=/run/x"],
		publishRm: ["80"],
		publishAdd: ["9090:90"],
		constraintRm: ["node.role == manager"],
		constraintAdd: ["node.labels.zone==b"],
		placementPrefRm: ["spread=node.labels.zone"],
		capDrop: ["net_admin"],
		capAdd: ["SYS_TIME"],
		updateParallelism: "2",
		updateOrder: "start-first",
		updateTimeout: "30s",
		rollbackFailureAction: "continue",
	});
	const v = validateServiceSpec(s);
	t.equal(v.task.container.image, "httpd");
	t.same(v.task.container.args, ["sleep", "60"]);
	t.same(v.mode, { kind: "replicated", replicas: 5 });
	t.same(v.task.container.env, ["B=3", "C=4"], "A removed, B replaced, C added");
	t.same(v.labels, { team: "a", new: "y" });
	t.same(v.task.container.labels, {});
	t.same(v.task.container.mounts, [{ type: "tmpfs", target: "/run/x" }]);
	t.same(v.endpoint.ports, [{ protocol: "tcp", targetPort: 90, publishedPort: 9090, publishMode: "ingress" }]);
	t.same(v.task.placement.constraints, ["node.labels.zone==b"], "removal ignores spaces around ==");
	t.same(v.task.placement.preferences, []);
	t.same(v.task.container.capAdd, ["CAP_SYS_TIME"]);
	t.same(v.task.container.capDrop, ["CAP_NET_ADMIN"]);
	t.equal(v.update.parallelism, 2);
	t.equal(v.update.order, "start-first");
	t.equal(v.update.timeoutMs, 30_000);
	t.equal(v.update.failureAction, "pause", "unchanged fields keep their value");
	t.equal(v.rollback.failureAction, "continue");
	t.equal(current.task.container.env.length, 2, "the current spec itself is not changed");
});

t.test("no flags: the same spec", async (t) => {
	t.same(validateServiceSpec(applyUpdateFlags(current as unknown as Record<string, unknown>, none)), current);
});

t.test("health flags: set, tune the existing check, disable", async (t) => {
	const withHc = applyUpdateFlags(current as unknown as Record<string, unknown>, {
		...none,
		healthCmd: "false",
		healthInterval: "1s",
	});
	const v = validateServiceSpec(withHc);
	t.same(v.task.container.healthcheck, { test: ["CMD-SHELL", "false"], intervalMs: 1000 });
	const tuned = validateServiceSpec(applyUpdateFlags(withHc, { ...none, healthRetries: "3" }));
	t.same(tuned.task.container.healthcheck, { test: ["CMD-SHELL", "false"], intervalMs: 1000, retries: 3 });
	const off = validateServiceSpec(applyUpdateFlags(withHc, { ...none, healthcheck: false }));
	t.same(off.task.container.healthcheck, { test: ["NONE"] });
	t.throws(
		() => applyUpdateFlags(current as unknown as Record<string, unknown>, { ...none, healthRetries: "3" }),
		/need a health check/,
	);
});

t.test("policy flags are checked, naming the flag", async (t) => {
	t.same(policyFromFlags({ updateDelay: "1m30s", updateMaxFailureRatio: "0.25" }, "update"), {
		delayMs: 90_000,
		maxFailureRatio: 0.25,
	});
	t.throws(
		() => policyFromFlags({ updateOrder: "random" }, "update"),
		new UsageError('invalid --update-order "random": use stop-first or start-first'),
	);
	t.throws(() => policyFromFlags({ rollbackFailureAction: "rollback" }, "rollback"), /--rollback-failure-action/);
	t.throws(() => policyFromFlags({ updateMaxFailureRatio: "2" }, "update"), /--update-max-failure-ratio/);
	t.throws(() => policyFromFlags({ updateMonitor: "soon" }, "update"), /--update-monitor/);
	t.throws(
		() => applyUpdateFlags(current as unknown as Record<string, unknown>, { ...none, publishRm: ["x"] }),
		/--publish-rm/,
	);
	const global = { ...(current as unknown as Record<string, unknown>), mode: { kind: "global" } };
	t.throws(() => applyUpdateFlags(global, { ...none, replicas: "3" }), /--replicas applies/);
});
