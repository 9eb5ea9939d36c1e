// --secret/--config (create) and --secret-add/-rm, --config-add/-rm (update): docker's CSV syntax,
// octal modes, refusals naming the flag; the agent's validator accepts every result.
import t from "tap";
import { validateServiceSpec } from "../../../agent/services/index.ts";
import { fileRef, specFromFlags } from "../../../cli/service/flags.ts";
import { applyUpdateFlags, type UpdateFlags } from "../../../cli/service/update-flags.ts";
import { noUpdateFlags as none } from "./fixtures.ts";

t.test("--secret and --config", async (t) => {
	t.same(fileRef("db", "secret"), { secretId: "", secretName: "db" });
	t.same(fileRef("source=db,target=pw,uid=1000,gid=1001,mode=0400", "secret"), {
		secretId: "",
		secretName: "db",
		target: "pw",
		uid: "1000",
		gid: "1001",
		mode: 0o400,
	});
	t.same(fileRef("src=app,target=/etc/app.conf", "config"), {
		configId: "",
		configName: "app",
		target: "/etc/app.conf",
	});
	t.throws(() => fileRef("source=db,mode=999", "secret"), {
		message: /--secret "source=db,mode=999": mode must be octal/,
	});
	t.throws(() => fileRef("target=x", "config"), { message: /--config "target=x": source is required/ });
	t.throws(() => fileRef("source=db,owner=1", "secret"), { message: /unknown field owner/ });
	const raw = specFromFlags("busybox:latest", [], {
		mode: "replicated",
		env: [],
		envFile: [],
		label: [],
		containerLabel: [],
		mount: [],
		network: [],
		publish: [],
		constraint: [],
		placementPref: [],
		capAdd: [],
		capDrop: [],
		secret: ["source=db,mode=0400"],
		config: ["app"],
	});
	const spec = validateServiceSpec({ ...raw, name: "s" });
	t.same(
		spec.task.secrets?.map((s) => [s.secretName, s.target, s.mode]),
		[["db", "db", 0o400]],
	);
	t.same(
		spec.task.configs?.map((s) => [s.configName, s.target, s.mode]),
		[["app", "/app", 0o444]],
	);
});

t.test("--secret-add / --secret-rm on the current spec", async (t) => {
	const current = validateServiceSpec({
		name: "s",
		task: {
			container: { image: "busybox:latest" },
			secrets: [
				{ secretId: "id1", secretName: "a", version: 2 },
				{ secretId: "id2", secretName: "b", version: 1 },
			],
		},
	});
	const s = (f: Partial<UpdateFlags>) => validateServiceSpec(applyUpdateFlags({ ...current }, { ...none, ...f }));
	t.same(
		s({ secretRm: ["b"], secretAdd: ["source=c,mode=0400"] }).task.secrets?.map((x) => [x.secretName, x.version]),
		[
			["a", 2],
			["c", 0],
		],
		"b removed, c added (its version resolved by the agent), a kept with its version",
	);
	t.same(
		s({ secretAdd: ["source=a,target=other"] }).task.secrets?.map((x) => [x.secretName, x.target]),
		[
			["b", "b"],
			["a", "other"],
		],
		"adding one already there replaces it",
	);
	t.equal(s({ secretRm: ["a", "id2"] }).task.secrets, undefined, "by name or id; none left: no field");
	t.same(
		s({ configAdd: ["app"] }).task.configs?.map((x) => x.target),
		["/app"],
	);
});
