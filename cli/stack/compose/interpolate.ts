// Compose's variable substitution, applied to every string value (never to keys) of a parsed
// file: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error},
// ${VAR:+alt}, ${VAR+alt}, nested defaults, and $$ for a literal $. Errors name the key path.

/** Why a template cannot be substituted; `interpolate` adds the file and the key path. */
export class TemplateError extends Error {
	override name = "TemplateError";
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** One string with `env`'s values substituted. */
export function substitute(s: string, env: Readonly<Record<string, string | undefined>>): string {
	let out = "";
	let i = 0;
	while (i < s.length) {
		const d = s.indexOf("$", i);
		if (d < 0) {
			out += s.slice(i);
			break;
		}
		out += s.slice(i, d);
		const next = s[d + 1];
		if (next === "$") {
			out += "$";
			i = d + 2;
		} else if (next === "{") {
			const end = closing(s, d + 2);
			if (end < 0) throw new TemplateError(`"${s}": a \${ is not closed. You may need to escape any $ with another $.`);
			out += braced(s.slice(d + 2, end), s, env);
			i = end + 1;
		} else {
			const m = NAME.exec(s.slice(d + 1));
			if (!m)
				throw new TemplateError(`"${s}": a $ must start a variable. You may need to escape any $ with another $.`);
			out += env[m[0]] ?? "";
			i = d + 1 + m[0].length;
		}
	}
	return out;
}

/** The index of the } that closes a ${ whose body starts at `from` (nested ${...} skipped). */
function closing(s: string, from: number): number {
	let depth = 1;
	for (let i = from; i < s.length; i++) {
		if (s[i] === "$" && s[i + 1] === "$") i++;
		else if (s[i] === "$" && s[i + 1] === "{") {
			depth++;
			i++;
		} else if (s[i] === "}" && --depth === 0) return i;
	}
	return -1;
}

function braced(body: string, whole: string, env: Readonly<Record<string, string | undefined>>): string {
	const m = NAME.exec(body);
	if (!m) throw new TemplateError(`"${whole}": \${${body}} does not start with a variable name`);
	const name = m[0];
	const rest = body.slice(name.length);
	const value = env[name];
	if (rest === "") return value ?? "";
	const op = /^(:?[-?+])/.exec(rest)?.[1];
	if (!op) throw new TemplateError(`"${whole}": \${${body}} is not a substitution (use :-, -, :?, ?, :+ or +)`);
	const arg = () => substitute(rest.slice(op.length), env);
	const unset = value === undefined;
	const empty = unset || value === "";
	switch (op) {
		case ":-":
			return empty ? arg() : value!;
		case "-":
			return unset ? arg() : value!;
		case ":?":
		case "?":
			if (op === ":?" ? empty : unset)
				throw new TemplateError(
					`required variable ${name} is missing a value${rest.length > op.length ? `: ${arg()}` : ""}`,
				);
			return value!;
		case ":+":
			return empty ? "" : arg();
		default:
			return unset ? "" : arg();
	}
}

/**
 * Every string value of `v` substituted (a new tree; the parsed one, whose YAML aliases may share
 * objects, is not changed). `onError(path, why)` turns a failure into the caller's error.
 */
export function interpolate(
	v: unknown,
	env: Readonly<Record<string, string | undefined>>,
	onError: (path: string, why: string) => never,
	path = "",
): unknown {
	if (typeof v === "string") {
		try {
			return substitute(v, env);
		} catch (err) {
			if (err instanceof TemplateError) onError(path || "(top level)", err.message);
			throw err;
		}
	}
	if (Array.isArray(v)) return v.map((x, i) => interpolate(x, env, onError, `${path}[${i}]`));
	if (v && typeof v === "object")
		return Object.fromEntries(
			Object.entries(v).map(([k, x]) => [k, interpolate(x, env, onError, path ? `${path}.${k}` : k)]),
		);
	return v;
}
