// KEY=VALUE files: the `.env` beside the first compose file (interpolation's variables) and each
// service's `env_file`. Blank lines and # comments are skipped, `export ` is allowed, values may
// be quoted ('...' literal, "..." with \n \t \" \\ escapes); a bare KEY takes this process's value.

export function parseEnvFile(text: string, file: string, env: Readonly<Record<string, string | undefined>> = {}) {
	const out: Record<string, string> = {};
	text.split(/\r?\n/).forEach((raw, i) => {
		const line = raw.trim();
		if (!line || line.startsWith("#")) return;
		const m = /^(?:export\s+)?([^=\s]+)\s*(?:=(.*))?$/.exec(line);
		if (!m) throw new EnvFileError(`${file}:${i + 1}: "${line}" is not KEY=VALUE`);
		const key = m[1]!;
		if (m[2] === undefined) {
			if (env[key] !== undefined) out[key] = env[key]!;
			return;
		}
		out[key] = value(m[2].trim(), `${file}:${i + 1}`);
	});
	return out;
}

function value(v: string, where: string): string {
	const q = v[0];
	if (q !== '"' && q !== "'") return v.replace(/\s+#.*$/, "");
	const end = v.lastIndexOf(q);
	if (end === 0) throw new EnvFileError(`${where}: the quote ${q} is not closed`);
	const inner = v.slice(1, end);
	if (q === "'") return inner;
	return inner.replace(/\\([nrt"\\])/g, (_, c: string) => ({ n: "\n", r: "\r", t: "\t" })[c] ?? c);
}

export class EnvFileError extends Error {
	override name = "EnvFileError";
}
