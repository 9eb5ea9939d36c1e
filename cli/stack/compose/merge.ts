// Several -c files merged as docker merges them: services by name, key by key; maps merged,
// scalars and command/entrypoint replaced, ports keyed by published port, volumes by target,
// secrets/configs by source, other lists appended; top-level networks, volumes, secrets and
// configs replaced entry by entry. Files arrive normalized (normalize.ts).
import { type Dict, isDict } from "./normalize.ts";

const REPLACED = new Set(["command", "entrypoint", "healthcheck.test"]);

const KEYED: Record<string, (x: Dict) => string> = {
	ports: (p) => (p.published !== undefined ? `${p.published}/${p.protocol}` : `target ${p.target}/${p.protocol}`),
	volumes: (v) => String(v.target),
	secrets: (s) => String(s.source),
	configs: (c) => String(c.source),
};

function mergeValue(base: unknown, over: unknown, path: string): unknown {
	if (over === undefined) return base;
	if (REPLACED.has(path)) return over;
	if (isDict(base) && isDict(over)) {
		const out: Dict = { ...base };
		for (const [k, v] of Object.entries(over)) out[k] = mergeValue(base[k], v, path ? `${path}.${k}` : k);
		return out;
	}
	if (Array.isArray(base) && Array.isArray(over)) {
		const key = KEYED[path];
		if (key) {
			const m = new Map<string, unknown>();
			for (const x of [...base, ...over]) m.set(key(x as Dict), x);
			return [...m.values()];
		}
		const out = [...base];
		for (const x of over) if (!out.some((y) => JSON.stringify(y) === JSON.stringify(x))) out.push(x);
		return out;
	}
	return over;
}

/** The files (first one first) as one: later files override earlier ones. */
export function mergeFiles(files: Dict[]): Dict {
	const [first, ...rest] = files;
	const out: Dict = { ...(first ?? {}) };
	for (const f of rest) {
		for (const [k, v] of Object.entries(f)) {
			if (k === "services") {
				const base = (out.services ?? {}) as Dict;
				const merged: Dict = { ...base };
				for (const [name, svc] of Object.entries((v ?? {}) as Dict))
					merged[name] = base[name] === undefined ? svc : mergeValue(base[name], svc, "");
				out.services = merged;
			} else if (isDict(v) && isDict(out[k])) out[k] = { ...(out[k] as Dict), ...v };
			else out[k] = v;
		}
	}
	return out;
}
