// Small checkers the object validators are built from: each one says which field is wrong and why,
// refuses fields it does not know, and costs time proportional to the value it checks.
import { InvalidObjectError } from "./errors.ts";

/** Thrown by a check; the validator turns it into an InvalidObjectError naming the object kind. */
class Fault {
	readonly field: string;
	readonly why: string;
	constructor(field: string, why: string) {
		this.field = field;
		this.why = why;
	}
}

export type Check = ((v: unknown, field: string) => void) & { optional?: boolean };

const show = (v: unknown) => {
	const s = v === undefined ? "undefined" : JSON.stringify(v);
	return s === undefined ? typeof v : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

export const fail = (field: string, why: string): never => {
	throw new Fault(field, why);
};

export function str(o: { min?: number; max?: number; re?: RegExp; hint?: string } = {}): Check {
	const min = o.min ?? 1;
	const max = o.max ?? 4096;
	return (v, f) => {
		if (typeof v !== "string") fail(f, `must be a string (got ${show(v)})`);
		const s = v as string;
		if (s.length < min || s.length > max) fail(f, `must be ${min} to ${max} characters (got ${s.length})`);
		if (o.re && !o.re.test(s)) fail(f, `must be ${o.hint ?? `like ${o.re}`} (got ${show(s)})`);
	};
}

export function int(min: number, max = Number.MAX_SAFE_INTEGER): Check {
	return (v, f) => {
		if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
			fail(f, `must be an integer from ${min} to ${max} (got ${show(v)})`);
	};
}

export const bool: Check = (v, f) => {
	if (typeof v !== "boolean") fail(f, `must be true or false (got ${show(v)})`);
};

export function oneOf(values: readonly string[]): Check {
	const set = new Set(values);
	return (v, f) => {
		if (typeof v !== "string" || !set.has(v)) fail(f, `must be one of ${values.join(", ")} (got ${show(v)})`);
	};
}

export function arr(item: Check, max = 1024): Check {
	return (v, f) => {
		if (!Array.isArray(v)) fail(f, `must be a list (got ${show(v)})`);
		const a = v as unknown[];
		if (a.length > max) fail(f, `must have at most ${max} entries (got ${a.length})`);
		for (let i = 0; i < a.length; i++) item(a[i], `${f}[${i}]`);
	};
}

const isMap = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** A map of string keys to string values (labels, options). */
export function strMap(maxKeys = 256): Check {
	return (v, f) => {
		if (!isMap(v)) fail(f, `must be a map of strings (got ${show(v)})`);
		const e = Object.entries(v as Record<string, unknown>);
		if (e.length > maxKeys) fail(f, `must have at most ${maxKeys} keys (got ${e.length})`);
		for (const [k, x] of e) {
			if (k.length === 0 || k.length > 256) fail(`${f}.${k}`, "key must be 1 to 256 characters");
			if (typeof x !== "string" || x.length > 4096)
				fail(`${f}.${k}`, `must be a string of at most 4096 characters (got ${show(x)})`);
		}
	};
}

export function opt(c: Check): Check {
	const o: Check = (v, f) => {
		if (v !== undefined) c(v, f);
	};
	o.optional = true;
	return o;
}

/** An object with exactly these fields (optional ones may be absent); unknown fields are refused. */
export function obj(fields: Record<string, Check>, extra?: (v: Record<string, unknown>, f: string) => void): Check {
	const names = Object.keys(fields);
	const known = new Set(names);
	return (v, f) => {
		if (!isMap(v)) fail(f, `must be an object (got ${show(v)})`);
		const o = v as Record<string, unknown>;
		const at = (k: string) => (f ? `${f}.${k}` : k);
		for (const k of names) {
			const c = fields[k]!;
			if (o[k] === undefined && !c.optional) fail(at(k), "is required");
			c(o[k], at(k));
		}
		for (const k of Object.keys(o)) if (!known.has(k)) fail(at(k), "is not a known field");
		extra?.(o, f);
	};
}

export const ISO_TIME = str({
	max: 40,
	re: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/,
	hint: "an ISO 8601 time",
});

/**
 * A validator for one object kind: checks `raw` against `check` and returns it typed, or throws
 * InvalidObjectError("task", "status.state", "must be one of ...").
 */
export function validator<T>(kind: string, check: Check): (raw: unknown) => T {
	return (raw) => {
		try {
			check(raw, "");
		} catch (e) {
			if (e instanceof Fault) throw new InvalidObjectError(kind, e.field || "value", e.why);
			throw e;
		}
		return raw as T;
	};
}
