// --format for every list and inspect command: "table", "json", or a subset of Go's text/template
// as docker takes it ({{.Field}}, {{.A.B}}, {{json .}}, {{json .Field}}, "table {{.ID}}\t{{.Name}}").
// A format that is none of these, or names a field the command has not, is a usage error (exit 2).
import { UsageError } from "./errors.ts";
import { table } from "./table.ts";

/** One piece of a template: literal text, or a value to print (`path` [] is `.`). */
type Node = { text: string } | { path: string[]; json: boolean; source: string };

export interface Template {
	nodes: Node[];
	/** The top-level fields the template reads (checked against the command's before any output). */
	fields: string[];
}

/** Go's printing of a value in a template, close enough: strings as they are, objects as JSON. */
function show(v: unknown): string {
	if (v === undefined) return "<no value>";
	if (v === null) return "<nil>";
	if (typeof v === "string") return v;
	if (typeof v === "number" || typeof v === "boolean") return String(v);
	return JSON.stringify(v);
}

const FIELD = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parsePath(arg: string, action: string): string[] {
	if (arg === ".") return [];
	if (!arg.startsWith(".")) throw new UsageError(`template: ${action}: expected a field like .Name, got "${arg}"`);
	const parts = arg.slice(1).split(".");
	for (const p of parts)
		if (!FIELD.test(p)) throw new UsageError(`template: ${action}: "${arg}" is not a field path like .Name or .A.B`);
	return parts;
}

/** Parses a Go-template subset; `\t` and `\n` typed as two characters mean a tab and a newline, as in docker. */
export function parseTemplate(src: string): Template {
	const s = src.replaceAll("\\t", "\t").replaceAll("\\n", "\n");
	const nodes: Node[] = [];
	let i = 0;
	while (i < s.length) {
		const open = s.indexOf("{{", i);
		if (open < 0) {
			nodes.push({ text: s.slice(i) });
			break;
		}
		let text = s.slice(i, open);
		const close = s.indexOf("}}", open + 2);
		if (close < 0) throw new UsageError(`template: unclosed action at "${s.slice(open, open + 20)}"`);
		let inner = s.slice(open + 2, close);
		let after = close + 2;
		// {{- and -}} trim the white space beside them, as in Go.
		if (inner.startsWith("- ")) {
			text = text.trimEnd();
			inner = inner.slice(2);
		}
		if (inner.endsWith(" -")) {
			inner = inner.slice(0, -2);
			while (after < s.length && /\s/.test(s[after]!)) after++;
		}
		if (text) nodes.push({ text });
		const action = `{{${s.slice(open + 2, close)}}}`;
		const words = inner.trim().split(/\s+/).filter(Boolean);
		if (words.length === 1) nodes.push({ path: parsePath(words[0]!, action), json: false, source: action });
		else if (words.length === 2 && words[0] === "json")
			nodes.push({ path: parsePath(words[1]!, action), json: true, source: action });
		else if (words.length === 0) throw new UsageError(`template: empty action ${action}`);
		else
			throw new UsageError(
				`template: ${action} is not supported (only {{.Field}}, {{.A.B}}, {{json .}} and {{json .Field}})`,
			);
		i = after;
	}
	const fields = [...new Set(nodes.flatMap((n) => ("path" in n && n.path.length > 0 ? [n.path[0]!] : [])))];
	return { nodes, fields };
}

/** Runs a template on one value; a field the value has not is a UsageError naming it. */
export function render(t: Template, v: unknown): string {
	let out = "";
	for (const n of t.nodes) {
		if ("text" in n) {
			out += n.text;
			continue;
		}
		let x: unknown = v;
		for (let k = 0; k < n.path.length; k++) {
			const name = n.path[k]!;
			if (x === null || typeof x !== "object" || Array.isArray(x))
				throw new UsageError(
					`template: ${n.source}: can't evaluate field ${name} in a ${x === null ? "null" : Array.isArray(x) ? "list" : typeof x}`,
				);
			const o = x as Record<string, unknown>;
			// The top level is the command's fixed set of fields: a name outside it is a mistake.
			// Below, objects are maps (labels, options): a missing key prints <no value>, as in Go.
			if (k === 0 && !(name in o)) throw new UsageError(`template: ${n.source}: no field ${name}`);
			x = o[name];
		}
		out += n.json ? JSON.stringify(x ?? null) : show(x);
	}
	return out;
}

/** One column of a command's default table: its header and the field it shows. */
export interface Column {
	header: string;
	field: string;
	/** How the cell shows the item's fields, when not just the field's value. */
	value?: (fields: Record<string, unknown>) => string;
}

/** What a list or inspect command tells the shared printer about its items. */
export interface ListSpec<T> {
	/** Template fields ({{.ID}}), docker's names; each reads one item. */
	fields: Record<string, (item: T) => unknown>;
	/** Fields that are ids: cut to `truncate` characters unless --no-trunc. */
	ids?: Record<string, number>;
	/** The default table's columns. */
	columns: Column[];
	/** What -q prints (a field name). */
	quiet?: string;
	/** --filter keys; each says whether an item matches a value. Same key repeated: any; keys: all. */
	filters?: Record<string, (item: T, value: string) => boolean>;
	/** What --format json prints per item (default: the item as the API gave it). */
	json?: (item: T) => unknown;
}

export interface ListFlags {
	format?: string;
	quiet?: boolean;
	filter?: string[];
	trunc?: boolean;
}

type Plan =
	| { kind: "table"; columns: Column[] }
	| { kind: "template-table"; template: Template; headers: string[] }
	| { kind: "json" }
	| { kind: "template"; template: Template }
	| { kind: "quiet" };

/** "MANAGER STATUS" for ManagerStatus. */
const headerOf = (field: string, columns: Column[]) =>
	columns.find((c) => c.field === field)?.header ??
	field
		.replace(/([a-z0-9])([A-Z])/g, "$1 $2")
		.replace(/_/g, " ")
		.toUpperCase();

function plan<T>(spec: ListSpec<T>, f: ListFlags): Plan {
	const format = f.format ?? "";
	if (f.quiet) {
		if (format && format !== "table")
			process.stderr.write("WARNING: Ignoring custom format, because both --format and --quiet are set.\n");
		if (!spec.quiet) throw new UsageError("this command has no -q/--quiet");
		return { kind: "quiet" };
	}
	if (format === "" || format === "table") return { kind: "table", columns: spec.columns };
	if (format === "json") return { kind: "json" };
	const known = (t: Template) => {
		for (const field of t.fields)
			if (!(field in spec.fields))
				throw new UsageError(`--format: no field ${field} here (fields: ${Object.keys(spec.fields).join(", ")})`);
		return t;
	};
	if (format.startsWith("table ")) {
		const template = known(parseTemplate(format.slice(6)));
		// The header row: the same template with each action replaced by its field's header.
		const headers = template.nodes
			.map((n) => ("text" in n ? n.text : n.path.length === 0 ? "" : headerOf(n.path.join("."), spec.columns)))
			.join("")
			.split("\t");
		return { kind: "template-table", template, headers };
	}
	if (!format.includes("{{"))
		throw new UsageError(
			`unknown --format "${format}": use table, json, a Go template such as '{{.ID}}', or 'table {{.ID}}\\t{{.Name}}'`,
		);
	return { kind: "template", template: known(parseTemplate(format)) };
}

const FILTER = /^([A-Za-z][A-Za-z0-9._-]*)=(.*)$/s;

/** --filter KEY=VALUE: checked against the command's keys before anything is fetched or printed. */
export function parseFilters<T>(spec: ListSpec<T>, list: string[] = []): Array<(item: T) => boolean> {
	const byKey = new Map<string, string[]>();
	for (const f of list) {
		const m = FILTER.exec(f);
		if (!m) throw new UsageError(`bad --filter "${f}": use KEY=VALUE`);
		const keys = Object.keys(spec.filters ?? {});
		if (!spec.filters?.[m[1]!])
			throw new UsageError(
				keys.length ? `invalid filter "${m[1]}" (known: ${keys.join(", ")})` : "this command takes no --filter",
			);
		byKey.set(m[1]!, [...(byKey.get(m[1]!) ?? []), m[2]!]);
	}
	return [...byKey].map(([k, values]) => {
		const test = spec.filters![k]!;
		return (item: T) => values.some((v) => test(item, v));
	});
}

/**
 * The printer every list command shares: `--format`, `-q`, `--filter`, `--no-trunc`. Checks the
 * flags first (call `prepare` before fetching, so a bad flag costs no request), then prints.
 */
export function listPrinter<T>(spec: ListSpec<T>, f: ListFlags) {
	const p = plan(spec, f);
	const filters = parseFilters(spec, f.filter);
	const trunc = f.trunc !== false;
	const context = (item: T) => {
		const o: Record<string, unknown> = {};
		for (const [k, get] of Object.entries(spec.fields)) {
			const v = get(item);
			const n = spec.ids?.[k];
			o[k] = trunc && n !== undefined && typeof v === "string" ? v.slice(0, n) : v;
		}
		return o;
	};
	return (items: readonly T[], out: (s: string) => void = (s) => process.stdout.write(s)) => {
		const shown = items.filter((x) => filters.every((ok) => ok(x)));
		switch (p.kind) {
			case "json":
				return out(`${JSON.stringify(shown.map((x) => (spec.json ? spec.json(x) : x)))}\n`);
			case "quiet":
				return out(shown.map((x) => `${show(context(x)[spec.quiet!])}\n`).join(""));
			case "template":
				return out(shown.map((x) => `${render(p.template, context(x))}\n`).join(""));
			case "table": {
				const rows = [p.columns.map((c) => c.header)];
				for (const x of shown) {
					const c = context(x);
					rows.push(
						p.columns.map((col) => (col.value ? col.value(c) : c[col.field] == null ? "" : show(c[col.field]))),
					);
				}
				return out(table(rows));
			}
			case "template-table": {
				const rows = [p.headers, ...shown.map((x) => render(p.template, context(x)).split("\t"))];
				return out(table(rows));
			}
		}
	};
}

/**
 * inspect: a JSON array of the objects (docker's shape), or with --format a template per object
 * (its fields are the object's own: a missing one is a usage error).
 */
export function inspectPrinter(format: string | undefined) {
	const template = format && format !== "json" ? parseTemplate(format) : undefined;
	if (format && format !== "json" && !format.includes("{{"))
		throw new UsageError(`unknown --format "${format}": use json or a Go template such as '{{.Name}}'`);
	return (items: readonly unknown[], out: (s: string) => void = (s) => process.stdout.write(s)) =>
		out(template ? items.map((x) => `${render(template, x)}\n`).join("") : `${JSON.stringify(items, null, 4)}\n`);
}

/** --filter label=KEY or label=KEY=VALUE, as docker's. */
export function labelFilter(labels: Record<string, string>, v: string): boolean {
	const i = v.indexOf("=");
	return i < 0 ? v in labels : labels[v.slice(0, i)] === v.slice(i + 1);
}

/** linux/arm64/v8 */
export const platformText = (p: { os: string; architecture: string; variant?: string } | null | undefined) =>
	p ? [p.os, p.architecture, p.variant].filter(Boolean).join("/") : "";
