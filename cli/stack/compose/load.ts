// Reading a stack's compose files: YAML (anchors, merge keys) with line:column errors, docker's
// refused keys, interpolation from the environment and the `.env` beside the first file, the
// Compose schema, then the files normalized and merged. Nothing here talks to the cluster.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseDocument, type ScalarTag } from "yaml";
import {
	ComposeError,
	ComposeForbiddenError,
	ComposeInterpolationError,
	ComposeSchemaError,
	ComposeUnsupportedError,
	ComposeYamlError,
} from "../errors.ts";
import { EnvFileError, parseEnvFile } from "./envfile.ts";
import { interpolate } from "./interpolate.ts";
import { DEPLOY_SUPPORTED, DEPRECATED, DOCKER_UNSUPPORTED, FORBIDDEN, SUPPORTED } from "./keys.ts";
import { mergeFiles } from "./merge.ts";
import { type Dict, isDict, normalizeService } from "./normalize.ts";
import { schemaError } from "./schema.ts";

export type Env = Readonly<Record<string, string | undefined>>;

export interface LoadOptions {
	files: string[];
	/** The environment variables (default: this process's). */
	env?: Env;
	/** How a file is read (tests); "-" is standard input. */
	read?: (path: string) => string;
}

export interface LoadedCompose {
	/** The merged, interpolated, normalized file. */
	config: Dict;
	/** The first file's directory: relative paths (binds, env_file, secret files) start there. */
	workingDir: string;
	/** The variables interpolation used (the environment over the .env file). */
	env: Env;
	/** Lines for stderr: keys ignored, as docker words them, then tsswarm's own. */
	warnings: string[];
}

const defaultRead = (p: string) => readFileSync(p === "-" ? 0 : p, "utf8");

/** The variables: `.env` in `dir` (if there), overridden by `env`. */
export function environment(dir: string, env: Env, read: (p: string) => string): Env {
	const file = resolve(dir, ".env");
	let text: string;
	try {
		text = read(file);
	} catch (err) {
		if ((err as NodeJS.ErrnoException).code === "ENOENT") return env;
		throw new ComposeError(`${file}: ${(err as Error).message}`);
	}
	try {
		return { ...parseEnvFile(text, file, env), ...env };
	} catch (err) {
		if (err instanceof EnvFileError) throw new ComposeError(err.message, "ERR_COMPOSE_ENV_FILE");
		throw err;
	}
}

/** 0440 is octal, as docker's YAML reads it (file modes of secrets and configs); 0o440 works too. */
const LEGACY_OCTAL: ScalarTag = {
	identify: (v) => typeof v === "number",
	default: true,
	tag: "tag:yaml.org,2002:int",
	format: "OCT",
	test: /^0[0-7]+$/,
	resolve: (s) => Number.parseInt(s, 8),
};

/** One file as a plain object; a YAML error is refused with its line and column. */
export function parseYaml(text: string, file: string): Dict {
	const doc = parseDocument(text, {
		merge: true,
		uniqueKeys: true,
		prettyErrors: true,
		customTags: (tags) => [LEGACY_OCTAL, ...tags],
	});
	const e = doc.errors[0];
	if (e) {
		const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
		throw new ComposeYamlError(
			file,
			pos.line,
			pos.col,
			e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, ""),
		);
	}
	let v: unknown;
	try {
		v = doc.toJS({ maxAliasCount: 1000 });
	} catch (err) {
		throw new ComposeYamlError(file, 1, 1, (err as Error).message);
	}
	if (v === null || v === undefined) return {};
	if (!isDict(v)) throw new ComposeSchemaError(file, "(top level)", "must be a mapping (services: ...)");
	return v;
}

const services = (d: Dict): Dict => (isDict(d.services) ? d.services : {});

function checkVersion(d: Dict, file: string): void {
	if (d.version === undefined) return;
	const v = String(d.version);
	if (!/^3(\.\d+)?$/.test(v))
		throw new ComposeUnsupportedError(
			`${file}: unsupported Compose file version: ${v} (a stack takes version 3.x files, or none: the Compose Specification)`,
		);
}

export function loadCompose(o: LoadOptions): LoadedCompose {
	if (o.files.length === 0) throw new ComposeError("specify a Compose file (with --compose-file)", "ERR_USAGE");
	const read = o.read ?? defaultRead;
	const workingDir = o.files[0] === "-" ? process.cwd() : dirname(resolve(o.files[0]!));
	const env = environment(workingDir, o.env ?? process.env, read);
	const parsed: Dict[] = [];
	for (const file of o.files) {
		const name = file === "-" ? "(stdin)" : file;
		let text: string;
		try {
			text = read(file);
		} catch (err) {
			throw new ComposeError(`${name}: ${(err as Error).message}`, "ERR_COMPOSE_READ");
		}
		const raw = parseYaml(text, name);
		const forbidden: Record<string, string> = {};
		for (const svc of Object.values(services(raw)))
			if (isDict(svc)) for (const k of Object.keys(svc)) if (FORBIDDEN[k]) forbidden[k] = FORBIDDEN[k];
		if (Object.keys(forbidden).length) throw new ComposeForbiddenError(forbidden);
		const d = interpolate(raw, env, (path, why) => {
			throw new ComposeInterpolationError(name, path, why);
		}) as Dict;
		const bad = schemaError(d);
		if (bad) throw new ComposeSchemaError(name, bad.path, bad.why);
		checkVersion(d, name);
		if (d.include !== undefined)
			throw new ComposeUnsupportedError(`${name}: include is not supported by stack deploy: pass each file with -c`);
		const norm: Dict = { ...d };
		if (isDict(d.services))
			norm.services = Object.fromEntries(
				Object.entries(d.services).map(([k, s]) => [k, normalizeService((s ?? {}) as Dict, name, k)]),
			);
		parsed.push(norm);
	}
	const config = mergeFiles(parsed);
	return { config, workingDir, env, warnings: warnings(config) };
}

/** docker's "Ignoring unsupported options" and "deprecated" lines, then keys tsswarm does not honour yet. */
function warnings(config: Dict): string[] {
	const unsupported = new Set<string>();
	const deprecated = new Map<string, string>();
	const notYet: string[] = [];
	for (const [name, raw] of Object.entries(services(config))) {
		const svc = raw as Dict;
		for (const k of Object.keys(svc)) {
			if (k.startsWith("x-")) continue;
			if (DOCKER_UNSUPPORTED.includes(k)) unsupported.add(k);
			else if (DEPRECATED[k]) deprecated.set(k, DEPRECATED[k]);
			else if (!SUPPORTED.includes(k)) notYet.push(`services.${name}.${k}`);
		}
		const deploy = isDict(svc.deploy) ? svc.deploy : {};
		for (const k of Object.keys(deploy))
			if (!DEPLOY_SUPPORTED.includes(k) && !k.startsWith("x-")) notYet.push(`services.${name}.deploy.${k}`);
	}
	const out: string[] = [];
	if (unsupported.size) out.push(`Ignoring unsupported options: ${[...unsupported].sort().join(", ")}\n`);
	if (deprecated.size)
		out.push(
			`Ignoring deprecated options:\n\n${[...deprecated]
				.map(([k, v]) => `${k}: ${v}`)
				.sort()
				.join("\n\n")}\n`,
		);
	if (notYet.length) out.push(`Ignoring options tsswarm does not support yet: ${notYet.join(", ")}\n`);
	return out;
}
