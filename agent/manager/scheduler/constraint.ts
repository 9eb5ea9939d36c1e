// Placement constraints (`node.labels.zone==a`, `node.role!=manager`), Swarm's syntax and matching:
// keys are case-insensitive, label names case-sensitive, values compared case-insensitively, and a
// missing label or field is the empty string. Parsed once into a Constraint; bad syntax is a named error.
import { InvalidConstraintError } from "./errors.ts";
import type { SchedNode } from "./types.ts";

export type ConstraintOperator = "==" | "!=";

export type ConstraintField =
	| "node.id"
	| "node.hostname"
	| "node.role"
	| "node.platform.os"
	| "node.platform.arch"
	| "node.labels"
	| "engine.labels";

export interface Constraint {
	/** The expression as written. */
	readonly expression: string;
	readonly field: ConstraintField;
	/** The label name for node.labels / engine.labels (case-sensitive), else "". */
	readonly label: string;
	readonly operator: ConstraintOperator;
	/** The value, lower-cased (matching ignores case). */
	readonly value: string;
}

export const NODE_LABEL_PREFIX = "node.labels.";
export const ENGINE_LABEL_PREFIX = "engine.labels.";
const FIELDS: readonly ConstraintField[] = [
	"node.id",
	"node.hostname",
	"node.role",
	"node.platform.os",
	"node.platform.arch",
];
// Swarm's own patterns (manager/constraint): a key is a dotted name, a value may not contain the
// characters of current or future operators (<, >, ~, =, !).
const KEY = /^[a-z_][a-z0-9\-_.]+$/i;
const VALUE = /^[a-z0-9:\-_\s.*()?+[\]\\^$|/]+$/i;
const OPERATORS: readonly ConstraintOperator[] = ["==", "!="];

export function parseConstraint(expression: string): Constraint {
	if (typeof expression !== "string") throw new InvalidConstraintError(String(expression), "not a string");
	const operator = OPERATORS.find((op) => expression.includes(op));
	if (!operator) throw new InvalidConstraintError(expression, `expected one operator from ${OPERATORS.join(", ")}`);
	const at = expression.indexOf(operator);
	const key = expression.slice(0, at).trim();
	const value = expression.slice(at + operator.length).trim();
	if (!KEY.test(key)) throw new InvalidConstraintError(expression, `key ${JSON.stringify(key)} is invalid`);
	if (!VALUE.test(value)) throw new InvalidConstraintError(expression, `value ${JSON.stringify(value)} is invalid`);
	const lower = key.toLowerCase();
	let field: ConstraintField | undefined;
	let label = "";
	for (const [prefix, f] of [
		[NODE_LABEL_PREFIX, "node.labels"],
		[ENGINE_LABEL_PREFIX, "engine.labels"],
	] as const) {
		if (lower.startsWith(prefix) && key.length > prefix.length) {
			field = f;
			label = key.slice(prefix.length);
		}
	}
	field ??= FIELDS.find((f) => f === lower);
	if (!field) {
		throw new InvalidConstraintError(
			expression,
			`unknown key ${JSON.stringify(key)} (known: ${FIELDS.join(", ")}, ${NODE_LABEL_PREFIX}K, ${ENGINE_LABEL_PREFIX}K)`,
		);
	}
	return { expression, field, label, operator, value: value.toLowerCase() };
}

export function parseConstraints(expressions: readonly string[]): Constraint[] {
	if (!Array.isArray(expressions)) throw new InvalidConstraintError(String(expressions), "constraints are not a list");
	return expressions.map(parseConstraint);
}

function fieldOf(c: Constraint, node: SchedNode): string {
	switch (c.field) {
		case "node.id":
			return node.id;
		case "node.hostname":
			return node.hostname ?? "";
		case "node.role":
			return node.role ?? "";
		case "node.platform.os":
			return node.platform?.os ?? "";
		case "node.platform.arch":
			return node.platform?.architecture ?? "";
		case "node.labels":
			return node.labels?.[c.label] ?? "";
		case "engine.labels":
			return node.engineLabels?.[c.label] ?? "";
	}
}

export function constraintMatches(c: Constraint, node: SchedNode): boolean {
	const have = fieldOf(c, node);
	const equal = have.length === c.value.length && (have === c.value || have.toLowerCase() === c.value);
	return c.operator === "==" ? equal : !equal;
}

/** True when the node satisfies every constraint. */
export function nodeMatches(constraints: readonly Constraint[], node: SchedNode): boolean {
	for (const c of constraints) if (!constraintMatches(c, node)) return false;
	return true;
}
