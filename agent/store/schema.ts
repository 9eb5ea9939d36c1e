// Small checkers the object validators are built from: each one says which field is wrong and why,
// refuses fields it does not know, and costs time proportional to the value it checks.
import { InvalidObjectError } from "./errors.ts";

/**
 * Thrown by a check with the bad field's path relative to that check; each enclosing object or
 * list prefixes its key on the way out, so a valid value builds no path strings at all.
 */
class Fault {
	field: string;
	readonly why: string;
	constructor(field: string, why: string) {
		this.field = field;
		this.why = why;
	}
}

const within = (e: unknown, key: string): unknown => {
	if (e instanceof Fault)
		e.field = e.field === "" ? key : e.field.startsWith("[") ? key + e.field : `${key}.${e.field}`;
	return e;
};

export type Check = ((v: unknown) => void) & { optional?: boolean };

const show = (v: unknown) => {
	const s = v === undefined ? "undefined" : JSON.stringify(v);
	return s === undefined ? typeof v : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** The value checked is wrong. */
export const fail = (why: string): never => {
	throw new Fault("", why);
};

/** A field below the value checked is wrong ("replicas", "status.state"). */
export const failAt = (field: string, why: string): never => {
	throw new Fault(field, why);
};

export function str(o: { min?: number; max?: number; re?: RegExp; hint?: string } = {}): Check {
	const min = o.min ?? 1;
	const max = o.max ?? 4096;
	return (v) => {
		if (typeof v !== "string") fail(`must be a string (got ${show(v)})`);
		const s = v as string;
		if (s.length < min || s.length > max) fail(`must be ${min} to ${max} characters (got ${s.length})`);
		if (o.re && !o.re.test(s)) fail(`must be ${o.hint ?? `like ${o.re}`} (got ${show(s)})`);
	};
}

export function int(min: number, max = Number.MAX_SAFE_INTEGER): Check {
	return (v) => {
		if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
			fail(`must be an integer from ${min} to ${max} (got ${show(v)})`);
	};
}

export const bool: Check = (v) => {
	if (typeof v !== "boolean") fail(`must be true or false (got ${show(v)})`);
};

export function oneOf(values: readonly string[]): Check {
	const set = new Set(values);
	return (v) => {
		if (typeof v !== "string" || !set.has(v)) fail(`must be one of ${values.join(", ")} (got ${show(v)})`);
	};
}

export function arr(item: Check, max = 1024): Check {
	return (v) => {
		if (!Array.isArray(v)) fail(`must be a list (got ${show(v)})`);
		const a = v as unknown[];
		if (a.length > max) fail(`must have at most ${max} entries (got ${a.length})`);
		for (let i = 0; i < a.length; i++) {
			try {
				item(a[i]);
			} catch (e) {
				throw within(e, `[${i}]`);
			}
		}
	};
}

const isMap = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** A map of string keys to string values (labels, options). */
export function strMap(maxKeys = 256): Check {
	return (v) => {
		if (!isMap(v)) fail(`must be a map of strings (got ${show(v)})`);
		const e = Object.entries(v as Record<string, unknown>);
		if (e.length > maxKeys) fail(`must have at most ${maxKeys} keys (got ${e.length})`);
		for (const [k, x] of e) {
			if (k.length === 0 || k.length > 256) failAt(k, "key must be 1 to 256 characters");
			if (typeof x !== "string" || x.length > 4096)
				failAt(k, `must be a string of at most 4096 characters (got ${show(x)})`);
		}
	};
}

/** Raw bytes (msgpackr keeps them as such); the value itself is never shown (it may be secret). */
export function bytes(max: number): Check {
	return (v) => {
		if (!(v instanceof Uint8Array)) fail(`must be bytes (got ${typeof v})`);
		if ((v as Uint8Array).length > max) fail(`must be at most ${max} bytes (got ${(v as Uint8Array).length})`);
	};
}

export function opt(c: Check): Check {
	const o: Check = (v) => {
		if (v !== undefined) c(v);
	};
	o.optional = true;
	return o;
}

/** An object with exactly these fields (optional ones may be absent); unknown fields are refused. */
export function obj(fields: Record<string, Check>, extra?: (v: Record<string, unknown>) => void): Check {
	const names = Object.keys(fields);
	const known = new Set(names);
	return (v) => {
		if (!isMap(v)) fail(`must be an object (got ${show(v)})`);
		const o = v as Record<string, unknown>;
		for (const k of names) {
			const c = fields[k]!;
			const x = o[k];
			if (x === undefined && !c.optional) failAt(k, "is required");
			try {
				c(x);
			} catch (e) {
				throw within(e, k);
			}
		}
		for (const k of Object.keys(o)) if (!known.has(k)) failAt(k, "is not a known field");
		extra?.(o);
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
			check(raw);
		} catch (e) {
			if (e instanceof Fault) throw new InvalidObjectError(kind, e.field || "value", e.why);
			throw e;
		}
		return raw as T;
	};
}
