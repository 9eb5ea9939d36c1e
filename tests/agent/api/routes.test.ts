// Typed routes of the local API: path parameters, bodies and queries checked by shape (an unknown
// field is a 400 naming it), and NDJSON streams that end cleanly and stop their producer when the
// client goes away.
import { request } from "node:http";
import t from "tap";
import {
	ApiClient,
	ApiError,
	type CompiledRoute,
	ControlServer,
	routes,
	socketPath,
} from "../../../agent/api/index.ts";
import { check as c, NotFoundError } from "../../../agent/store/index.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";

type Tap = { teardown(fn: () => unknown): void };

interface TestRoutes {
	"GET /v1/things/:id/parts/:part": { response: { id: string; part: string } };
	"POST /v1/things": {
		body: { name: string; size?: number; tags?: string[] };
		response: { name: string; size: number };
	};
	"GET /v1/missing/:id": { response: { id: string } };
	"GET /v1/count": { query: { n?: string }; stream: { i: number } };
	"GET /v1/forever": { stream: { i: number } };
	"GET /v1/breaks": { stream: { i: number } };
}

async function serve(t: Tap, table: CompiledRoute[]) {
	const d = tempDir("api-routes-");
	t.teardown(d.remove);
	const s = new ControlServer(socketPath(d.path), table, { logger: { error() {} } as never });
	await s.listen();
	t.teardown(() => s.close());
	return { sock: socketPath(d.path), client: ApiClient.forDataRoot<TestRoutes>(d.path) };
}

/** One raw request: status, content type, body text. */
function raw(sock: string, method: string, path: string, body?: string) {
	return new Promise<{ status: number; type: string; text: string }>((resolve, reject) => {
		const headers = body === undefined ? {} : { "content-length": Buffer.byteLength(body) };
		const req = request({ socketPath: sock, method, path, headers }, (res) => {
			const chunks: Buffer[] = [];
			res.on("data", (x: Buffer) => chunks.push(x));
			res.on("end", () =>
				resolve({
					status: res.statusCode!,
					type: String(res.headers["content-type"]),
					text: Buffer.concat(chunks).toString(),
				}),
			);
		});
		req.on("error", reject);
		req.end(body);
	});
}

const route = routes<TestRoutes>();

t.test("path parameters are matched, decoded and typed", async (t) => {
	const { sock, client } = await serve(t, [
		route("GET /v1/things/:id/parts/:part", { handler: ({ params }) => ({ id: params.id, part: params.part }) }),
		route("GET /v1/missing/:id", {
			handler: ({ params }) => {
				throw new NotFoundError("thing", params.id);
			},
		}),
	]);
	t.same(await client.call("GET /v1/things/:id/parts/:part", { params: { id: "a b/c", part: "7" } }), {
		id: "a b/c",
		part: "7",
	});
	const r = await raw(sock, "GET", "/v1/things/x%2Fy/parts/z");
	t.same([r.status, JSON.parse(r.text)], [200, { id: "x/y", part: "z" }], "an encoded slash stays in the parameter");
	t.equal((await raw(sock, "GET", "/v1/things/x/parts")).status, 404, "a missing segment matches nothing");
	t.equal((await raw(sock, "GET", "/v1/things//parts/z")).status, 404, "an empty parameter matches nothing");
	t.equal((await raw(sock, "POST", "/v1/things/x/parts/z")).status, 404, "nor another method");
	await t.rejects(client.call("GET /v1/missing/:id", { params: { id: "nope" } }), {
		name: "ApiError",
		code: "ERR_NOT_FOUND",
		httpStatus: 404,
	});
});

t.test("bodies and queries are checked: an unknown field is a 400 that names it", async (t) => {
	const seen: unknown[] = [];
	const { sock, client } = await serve(t, [
		route("POST /v1/things", {
			body: c.obj({ name: c.str(), size: c.opt(c.int(0, 100)), tags: c.opt(c.arr(c.str())) }),
			handler: ({ body }) => {
				seen.push(body);
				return { name: body.name, size: body.size ?? 0 };
			},
		}),
		route("GET /v1/things/:id/parts/:part", { handler: ({ params }) => params }),
	]);
	// Positive control: a good body goes through, typed.
	t.same(await client.call("POST /v1/things", { body: { name: "a", size: 3 } }), { name: "a", size: 3 });
	const bad = async (body: string) => {
		const r = await raw(sock, "POST", "/v1/things", body);
		return { status: r.status, ...(JSON.parse(r.text) as { code: string; error: string }) };
	};
	t.match(await bad(JSON.stringify({ name: "a", colour: "red" })), {
		status: 400,
		code: "ERR_INVALID_REQUEST",
		error: "invalid request body of POST /v1/things: colour is not a known field",
	});
	t.match(await bad(JSON.stringify({ name: "a", size: "3" })), { status: 400, error: /size must be an integer/ });
	t.match(await bad(JSON.stringify({ name: "a", tags: ["x", 5] })), {
		status: 400,
		error: /tags\[1\] must be a string/,
	});
	t.match(await bad(JSON.stringify({ size: 1 })), { status: 400, error: /name is required/ });
	t.equal(seen.length, 1, "the handler never saw a bad body");
	// A route without a body or query refuses any field sent to it.
	const extra = await raw(sock, "GET", "/v1/things/a/parts/b?verbose=1");
	t.equal(extra.status, 400);
	t.match(JSON.parse(extra.text), { code: "ERR_INVALID_REQUEST", error: /query of .*: verbose is not a known field/ });
	const body = await raw(sock, "GET", "/v1/things/a/parts/b", JSON.stringify({ x: 1 }));
	t.match([body.status, JSON.parse(body.text).error], [400, /x is not a known field/]);
	t.equal((await raw(sock, "GET", "/v1/things/a/parts/b")).status, 200, "and answers without one");
	await t.rejects(client.call("POST /v1/things", { body: { name: "a", colour: 1 } as never }), {
		code: "ERR_INVALID_REQUEST",
		message: /colour is not a known field/,
	});
});

t.test("an NDJSON stream of N items: each line one item, then a clean end", async (t) => {
	const { sock, client } = await serve(t, [
		route("GET /v1/count", {
			query: c.obj({ n: c.opt(c.str({ re: /^\d+$/ })) }),
			stream: true,
			handler: async function* ({ query }) {
				for (let i = 0; i < Number(query.n ?? 3); i++) yield { i };
			},
		}),
	]);
	const got: number[] = [];
	for await (const x of client.stream("GET /v1/count", { query: { n: "500" } })) got.push(x.i);
	t.equal(got.length, 500, "all 500 items");
	t.same(got.slice(0, 3).concat(got.slice(-1)), [0, 1, 2, 499], "in order");
	const r = await raw(sock, "GET", "/v1/count?n=4");
	t.equal(r.type, "application/x-ndjson");
	t.equal(r.text, '{"i":0}\n{"i":1}\n{"i":2}\n{"i":3}\n', "one JSON object per line, nothing after the last");
	const none: unknown[] = [];
	for await (const x of client.stream("GET /v1/count", { query: { n: "0" } })) none.push(x);
	t.same(none, [], "an empty stream ends at once");
	await t.rejects(
		(async () => {
			for await (const _ of client.stream("GET /v1/count", { query: { n: "x" } })) void _;
		})(),
		{ code: "ERR_INVALID_REQUEST", httpStatus: 400 },
		"a bad query fails before the stream starts",
	);
});

t.test("a failure inside a stream ends it with an error the client throws", async (t) => {
	const { client } = await serve(t, [
		route("GET /v1/breaks", {
			stream: true,
			handler: async function* () {
				yield { i: 0 };
				yield { i: 1 };
				throw new NotFoundError("thing", "gone-meanwhile");
			},
		}),
	]);
	const got: number[] = [];
	const err = await (async () => {
		try {
			for await (const x of client.stream("GET /v1/breaks")) got.push(x.i);
		} catch (e) {
			return e;
		}
	})();
	t.same(got, [0, 1], "the items before the failure arrive");
	t.ok(err instanceof ApiError, "then the client throws");
	t.match(err, { code: "ERR_NOT_FOUND", httpStatus: 404, message: /gone-meanwhile/ });
});

t.test("a client that goes away ends the producer", async (t) => {
	let produced = 0;
	let finished = false;
	let aborted = false;
	const { client } = await serve(t, [
		route("GET /v1/forever", {
			stream: true,
			handler: async function* ({ signal }) {
				signal.addEventListener("abort", () => {
					aborted = true;
				});
				try {
					for (let i = 0; ; i++) {
						produced++;
						yield { i };
						// Wait like a log follower: for the next line or the client leaving.
						await new Promise<void>((r) => {
							const tm = setTimeout(r, 5);
							signal.addEventListener(
								"abort",
								() => {
									clearTimeout(tm);
									r();
								},
								{ once: true },
							);
						});
						if (signal.aborted) return;
					}
				} finally {
					finished = true;
				}
			},
		}),
	]);
	const got: number[] = [];
	let runningWhileRead = false;
	for await (const x of client.stream("GET /v1/forever")) {
		got.push(x.i);
		if (got.length === 5) {
			runningWhileRead = !finished && !aborted;
			break;
		}
	}
	t.same(got, [0, 1, 2, 3, 4], "the client read five items");
	t.ok(runningWhileRead, "positive control: the producer was running while the client read");
	await waitFor("the producer's finally ran", () => finished, { timeoutMs: 5_000 });
	t.ok(aborted, "its signal fired");
	t.ok(produced >= 5 && produced < 1000, `it stopped (${produced} produced)`);

	// The same with an AbortSignal on the client side.
	finished = false;
	const ac = new AbortController();
	const seen: number[] = [];
	await t.rejects(
		(async () => {
			for await (const x of client.stream("GET /v1/forever", undefined, { signal: ac.signal })) {
				seen.push(x.i);
				if (seen.length === 2) ac.abort();
			}
		})(),
		{ name: "AbortError" },
	);
	await waitFor("the producer ended after the abort", () => finished, { timeoutMs: 5_000 });
});
