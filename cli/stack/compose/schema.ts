// The Compose Specification's JSON schema (compose-spec.json, its source in compose-spec.SOURCE.md),
// compiled once with ajv; an error names the key path as docker's does ("services.web.deploy
// Additional property bogus is not allowed"), choosing the deepest of ajv's findings.
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import spec from "./compose-spec.json" with { type: "json" };

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
	if (compiled) return compiled;
	// The $schema URI (https://json-schema.org/draft-07/schema) is draft-07, ajv's default draft; the
	// file uses union types and no `format` keyword, so no formats package is needed.
	const { $schema: _, ...schema } = spec as Record<string, unknown>;
	compiled = new Ajv({ allErrors: true, strict: false }).compile(schema);
	return compiled;
}

/** Why `config` does not match the schema (null: it does). */
export function schemaError(config: unknown): { path: string; why: string } | null {
	const v = validator();
	if (v(config)) return null;
	const errors = v.errors ?? [];
	// The deepest finding is the most specific; among equals, one that is not a oneOf/anyOf summary.
	const depth = (e: ErrorObject) => e.instancePath.split("/").length + (e.keyword === "additionalProperties" ? 1 : 0);
	const best = [...errors].sort(
		(a, b) => depth(b) - depth(a) || Number(/Of$/.test(a.keyword)) - Number(/Of$/.test(b.keyword)),
	)[0];
	if (!best) return { path: "(top level)", why: "does not match the Compose Specification" };
	const path =
		best.instancePath
			.split("/")
			.slice(1)
			.map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
			.join(".") || "(top level)";
	return { path, why: describe(best) };
}

function describe(e: ErrorObject): string {
	const p = e.params as Record<string, unknown>;
	switch (e.keyword) {
		case "additionalProperties":
			return `Additional property ${String(p.additionalProperty)} is not allowed`;
		case "type":
			return `must be a ${String(p.type).replace(",", " or ")}`;
		case "enum":
			return `must be one of ${(p.allowedValues as unknown[]).map((x) => JSON.stringify(x)).join(", ")}`;
		case "required":
			return `is missing ${String(p.missingProperty)}`;
		case "uniqueItems":
			return "must not list the same item twice";
		case "oneOf":
		case "anyOf":
			return "does not match any of the forms the Compose Specification allows here";
		default:
			return e.message ?? "is not valid";
	}
}
