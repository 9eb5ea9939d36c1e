// --format/-q/--filter/--no-trunc as every list and inspect command prints: the Go-template
// subset, docker's table form, and every mistake refused as a usage error, never a silent table.
import t from "tap";
import { UsageError } from "../../cli/errors.ts";
import { inspectPrinter, type ListFlags, type ListSpec, listPrinter, parseTemplate, render } from "../../cli/format.ts";

interface Item {
	id: string;
	name: string;
	role: string;
	labels: Record<string, string>;
	spec: { replicas: number };
}

const items: Item[] = [
	{ id: "abcdef0123456789aaaa", name: "web", role: "manager", labels: { zone: "a" }, spec: { replicas: 3 } },
	{ id: "0123456789abcdefbbbb", name: "db", role: "worker", labels: {}, spec: { replicas: 1 } },
];

const SPEC: ListSpec<Item> = {
	fields: {
		ID: (x) => x.id,
		Name: (x) => x.name,
		Role: (x) => x.role,
		Labels: (x) => x.labels,
		Spec: (x) => x.spec,
		ManagerStatus: (x) => (x.role === "manager" ? "Leader" : ""),
	},
	ids: { ID: 12 },
	columns: [
		{ header: "ID", field: "ID" },
		{ header: "NAME", field: "Name" },
		{ header: "MANAGER STATUS", field: "ManagerStatus" },
	],
	quiet: "ID",
	filters: { name: (x, v) => x.name === v, role: (x, v) => x.role === v, label: (x, v) => v in x.labels },
};

function print(flags: ListFlags, list: Item[] = items): string {
	let out = "";
	listPrinter(SPEC, flags)(list, (s) => {
		out += s;
	});
	return out;
}

t.test("the template subset: fields, nested fields, json, literal text, \\t", async (t) => {
	const v = { Name: "web", Spec: { Replicas: 3, Mode: { Global: null } }, Labels: { zone: "a" }, N: 2, On: true };
	t.equal(render(parseTemplate("{{.Name}}"), v), "web");
	t.equal(render(parseTemplate("name={{ .Name }} replicas={{.Spec.Replicas}}"), v), "name=web replicas=3");
	t.equal(render(parseTemplate("{{.Labels.zone}}/{{.Labels.rack}}"), v), "a/<no value>", "a missing map key, as Go");
	t.equal(render(parseTemplate("{{json .Labels}}"), v), '{"zone":"a"}');
	t.equal(render(parseTemplate("{{json .}}"), { a: 1 }), '{"a":1}');
	t.equal(render(parseTemplate("{{json .Name}}"), v), '"web"');
	t.equal(render(parseTemplate("{{.Spec}}"), v), '{"Replicas":3,"Mode":{"Global":null}}', "an object prints as JSON");
	t.equal(render(parseTemplate("{{.Spec.Mode.Global}}"), v), "<nil>");
	t.equal(render(parseTemplate("{{.N}} {{.On}}"), v), "2 true");
	t.equal(render(parseTemplate("{{.Name}}\\t{{.N}}"), v), "web\t2", "a typed \\t is a tab, as in docker");
	t.equal(render(parseTemplate("a {{- .Name -}} b"), v), "awebb", "{{- -}} trim");
	t.equal(render(parseTemplate("no actions"), v), "no actions");
	t.same(parseTemplate("{{.A}} {{.B.C}} {{json .A}} {{json .}}").fields, ["A", "B"]);
});

t.test("template mistakes are usage errors that say what is wrong", async (t) => {
	const bad = (tpl: string, v: unknown, re: RegExp) => {
		const err = (() => {
			try {
				render(parseTemplate(tpl), v);
			} catch (e) {
				return e;
			}
		})();
		t.ok(err instanceof UsageError, `${tpl}: a UsageError`);
		t.match((err as Error).message, re, tpl);
	};
	bad("{{.Nope}}", { Name: "x" }, /no field Nope/);
	bad("{{.Name.First}}", { Name: "x" }, /can't evaluate field First in a string/);
	bad("{{.Name", {}, /unclosed action/);
	bad("{{}}", {}, /empty action/);
	bad("{{upper .Name}}", { Name: "x" }, /not supported/);
	bad("{{range .Items}}", { Items: [] }, /not supported/);
	bad("{{Name}}", { Name: "x" }, /expected a field like \.Name/);
	bad("{{.a-b}}", {}, /not a field path/);
});

t.test("table, json, templates, custom tables", async (t) => {
	t.equal(
		print({}),
		"ID             NAME   MANAGER STATUS\nabcdef012345   web    Leader\n0123456789ab   db\n",
		"the default table: ids cut to 12, no trailing blanks",
	);
	t.equal(print({ format: "table" }), print({}), "'table' is the default table");
	t.same(JSON.parse(print({ format: "json" })), items, "json: the items as the API gave them, untruncated");
	t.equal(print({ format: "{{.ID}} {{.Name}}" }), "abcdef012345 web\n0123456789ab db\n", "one line per item");
	t.equal(print({ format: "{{.ID}}", trunc: false }), `${items[0]!.id}\n${items[1]!.id}\n`, "--no-trunc");
	t.equal(
		print({ format: "{{json .}}" }).split("\n")[0],
		JSON.stringify({
			ID: "abcdef012345",
			Name: "web",
			Role: "manager",
			Labels: { zone: "a" },
			Spec: { replicas: 3 },
			ManagerStatus: "Leader",
		}),
		"{{json .}}: the template's fields",
	);
	t.equal(
		print({ format: "table {{.Name}}\\t{{.ManagerStatus}}\\t{{.Spec.replicas}}" }),
		"NAME   MANAGER STATUS   SPEC.REPLICAS\nweb    Leader           3\ndb                      1\n",
		"table TEMPLATE: tab-separated cells aligned under headers named for the fields",
	);
	t.equal(print({ format: "{{.Name}}" }, []), "", "no items, no lines");
	t.equal(print({}, []), "ID   NAME   MANAGER STATUS\n", "an empty table keeps its header");
});

t.test("-q, --filter", async (t) => {
	t.equal(print({ quiet: true }), "abcdef012345\n0123456789ab\n");
	t.equal(print({ quiet: true, trunc: false }), `${items[0]!.id}\n${items[1]!.id}\n`);
	t.equal(print({ quiet: true, filter: ["role=worker"] }), "0123456789ab\n", "filtered");
	t.equal(print({ quiet: true, filter: ["name=web", "name=db"] }), "abcdef012345\n0123456789ab\n", "a key twice: any");
	t.equal(print({ quiet: true, filter: ["name=web", "role=worker"] }), "", "two keys: all");
	t.equal(print({ quiet: true, filter: ["label=zone"] }), "abcdef012345\n");
	t.equal(print({ format: "json", filter: ["name=db"] }), `${JSON.stringify([items[1]])}\n`, "json is filtered too");
});

t.test("an unknown format, field or filter is an error before anything is printed", async (t) => {
	const refused = (flags: ListFlags, re: RegExp) => {
		let out = "";
		const err = (() => {
			try {
				listPrinter(SPEC, flags)(items, (s) => {
					out += s;
				});
			} catch (e) {
				return e;
			}
		})();
		t.ok(err instanceof UsageError, `${JSON.stringify(flags)} is a usage error (exit 2)`);
		t.match((err as Error).message, re);
		t.equal(out, "", "and nothing was printed");
	};
	refused({ format: "yaml" }, /unknown --format "yaml": use table, json/);
	refused({ format: "tabel" }, /unknown --format/);
	refused(
		{ format: "{{.Hostname}}" },
		/no field Hostname here \(fields: ID, Name, Role, Labels, Spec, ManagerStatus\)/,
	);
	refused({ format: "table {{.ID}}\\t{{.Nope}}" }, /no field Nope/);
	refused({ filter: ["colour=red"] }, /invalid filter "colour" \(known: name, role, label\)/);
	refused({ filter: ["role"] }, /bad --filter "role": use KEY=VALUE/);
	// The check comes before the items: listPrinter throws even with none to print.
	t.throws(() => listPrinter(SPEC, { format: "{{.Nope}}" }), UsageError);
});

t.test("inspect prints a JSON array, or a template per object", async (t) => {
	const capture = (format: string | undefined, list: unknown[]) => {
		let out = "";
		inspectPrinter(format)(list, (s) => {
			out += s;
		});
		return out;
	};
	const objs = [
		{ Name: "a", IPAM: { Config: [{ Subnet: "10.0.0.0/24" }] } },
		{ Name: "b", IPAM: { Config: [] } },
	];
	t.same(JSON.parse(capture(undefined, objs)), objs);
	t.ok(capture(undefined, [objs[0]]).startsWith("["), "one object is still an array");
	t.same(JSON.parse(capture("json", objs)), objs);
	t.equal(capture("{{.Name}} {{json .IPAM.Config}}", objs), 'a [{"Subnet":"10.0.0.0/24"}]\nb []\n');
	t.throws(() => capture("{{.Nope}}", objs), { message: /no field Nope/ });
	t.throws(() => inspectPrinter("yaml"), UsageError);
});
