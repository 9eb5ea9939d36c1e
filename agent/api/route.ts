// One route of the local API: its key ("GET /v1/networks/:ref") from the shared ApiRoutes table,
// checkers for its body and query (unknown fields refused, naming the field), and a handler typed
// by the table. The server matches paths to routes here and hands handlers checked input.
import { InvalidRequestError } from "../errors.ts";
import { check as c, InvalidObjectError } from "../store/index.ts";
import type { ApiRoutes, BodyOf, ItemOf, Method, PathOf, PathParams, QueryOf, ResponseOf, RouteMap } from "./types.ts";

export type Check = c.Check;

/** What a handler gets: checked input, and a signal that fires when the client goes away. */
export interface RouteRequest<P, B, Q> {
	params: P;
	body: B;
	query: Q;
	signal: AbortSignal;
}

type Answer<R, K extends keyof R> = R[K] extends { stream: unknown }
	? AsyncIterable<ItemOf<K, R>> | Promise<AsyncIterable<ItemOf<K, R>>>
	: ResponseOf<K, R> | Promise<ResponseOf<K, R>>;

type Has<T, F extends string> = T extends { [k in F]: unknown } ? true : false;

/**
 * A route's definition. `body`/`query` are required exactly when the table gives the route one:
 * a route without a body refuses any field sent to it.
 */
export type RouteDef<R, K extends keyof R & string> = {
	handler: (
		req: RouteRequest<
			PathParams<PathOf<K>>,
			BodyOf<K, R> extends undefined ? Record<never, never> : BodyOf<K, R>,
			QueryOf<K, R> extends undefined ? Record<never, never> : QueryOf<K, R>
		>,
	) => Answer<R, K>;
} & (Has<R[K], "body"> extends true ? { body: Check } : { body?: undefined }) &
	(Has<R[K], "query"> extends true ? { query: Check } : { query?: undefined }) &
	(Has<R[K], "stream"> extends true ? { stream: true } : { stream?: undefined });

/** A route ready for the server (its types erased). */
export interface CompiledRoute {
	key: string;
	method: Method;
	/** Path segments; ":name" captures one. */
	segments: string[];
	stream: boolean;
	checkBody: (v: unknown) => Record<string, unknown>;
	checkQuery: (v: unknown) => Record<string, string>;
	handler: (req: RouteRequest<Record<string, string>, unknown, unknown>) => unknown;
}

const NONE = c.obj({});

function checker<T>(what: string, check: Check): (v: unknown) => T {
	const validate = c.validator<T>(what, check);
	return (v) => {
		try {
			return validate(v);
		} catch (e) {
			if (e instanceof InvalidObjectError) throw new InvalidRequestError(e.message, e.field);
			throw e;
		}
	};
}

/** compile() for one table: `const route = routes<ApiRoutes>(); route("GET /v1/info", {...})`. */
export function routes<R extends RouteMap<R> = ApiRoutes>() {
	return <K extends keyof R & string>(key: K, def: RouteDef<R, K>): CompiledRoute => {
		const m = /^(GET|POST|PUT|DELETE) (\/\S*)$/.exec(key);
		if (!m) throw new TypeError(`route key "${key}" is not "METHOD /path"`);
		return {
			key,
			method: m[1] as Method,
			segments: m[2]!.split("/").slice(1),
			stream: def.stream === true,
			checkBody: checker(`request body of ${key}`, def.body ?? NONE),
			checkQuery: checker(`query of ${key}`, def.query ?? NONE),
			handler: def.handler as CompiledRoute["handler"],
		};
	};
}

/** The route for `method` and `path` (no query), with its path parameters; undefined if none. */
export function match(
	table: readonly CompiledRoute[],
	method: string,
	path: string,
): { route: CompiledRoute; params: Record<string, string> } | undefined {
	const parts = path.split("/").slice(1);
	for (const route of table) {
		if (route.method !== method || route.segments.length !== parts.length) continue;
		const params: Record<string, string> = {};
		let ok = true;
		for (let i = 0; ok && i < parts.length; i++) {
			const seg = route.segments[i]!;
			const got = parts[i]!;
			if (seg.startsWith(":")) {
				let v: string;
				try {
					v = decodeURIComponent(got);
				} catch {
					v = "";
				}
				if (v === "") ok = false;
				else params[seg.slice(1)] = v;
			} else ok = seg === got;
		}
		if (ok) return { route, params };
	}
	return undefined;
}
