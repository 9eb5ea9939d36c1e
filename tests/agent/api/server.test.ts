// The local API: root only from the first instant (a 0700 socket dir, a 0600 socket), bounded
// bodies, and errors answered with an HTTP status chosen by the error's class and a named code.
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, statSync, symlinkSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import t from "tap";
import {
	AgentError,
	AlreadyInClusterError,
	ApiError,
	ControlServer,
	call,
	callStream,
	type Route,
	socketPath,
	UsageError,
} from "../../../agent/index.ts";
import { InvalidNetworkSpecError } from "../../../agent/manager/index.ts";
import { NameInUseError, NoLeaderError, NotFoundError, storeErrorFrom } from "../../../agent/store/index.ts";
import { NotLeaderError } from "../../../consensus/index.ts";
import { tempDir, waitFor } from "../../helpers/index.ts";

type Tap = { teardown(fn: () => unknown): void };
const NOBODY = 65534;
const node = process.execPath;

/** A data root whose parents others may traverse (as /var/lib is), so only the socket dir guards it. */
function root(t: Tap): string {
	const d = tempDir("api-");
	t.teardown(d.remove);
	chmodSync(d.path, 0o755);
	return d.path;
}

async function serve(t: Tap, dataRoot: string, routes: Record<string, Route>, o: { maxBodyBytes?: number } = {}) {
	const logged: unknown[] = [];
	const s = new ControlServer(socketPath(dataRoot), routes, {
		...o,
		logger: { error: (x: unknown) => logged.push(x) } as never,
	});
	await s.listen();
	t.teardown(() => s.close());
	return { s, logged };
}

/** One raw request on the socket: what the server answers, bytes as they are. */
function raw(sock: string, method: string, path: string, body?: string | Buffer) {
	return new Promise<{ status: number; json: { error?: string; code?: string } }>((resolve, reject) => {
		const req = request({ socketPath: sock, method, path }, (res) => {
			const chunks: Buffer[] = [];
			res.on("data", (c: Buffer) => chunks.push(c));
			res.on("end", () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString()) }));
		});
		req.on("error", reject);
		req.end(body);
	});
}

/** Connect to `sock` as `uid` in a child process: "CONNECTED" or the errno code. */
function connectAs(uid: number, sock: string): string {
	const script = `const s = require("net").connect(process.argv[1]);
s.on("connect", () => { console.log("CONNECTED"); s.destroy(); });
s.on("error", (e) => console.log(e.code));`;
	const r = spawnSync(node, ["-e", script, sock], { uid, gid: uid, cwd: "/", encoding: "utf8", timeout: 10_000 });
	return `${r.stdout.trim()}${r.error ? ` spawn error ${r.error.message}` : ""}${r.stderr.trim() ? ` stderr ${r.stderr.trim()}` : ""}`;
}

const mode = (p: string) => statSync(p).mode & 0o777;

t.test("errors are answered by class: 400, 404, 409, 503, and a generic, logged 500", async (t) => {
	const dataRoot = root(t);
	const boom = (err: unknown) => () => {
		throw err;
	};
	const { logged } = await serve(t, dataRoot, {
		"POST /v1/usage": boom(new UsageError("--replicas must be a number")),
		"POST /v1/spec": boom(new InvalidNetworkSpecError("mtu x is not a number of bytes")),
		"POST /v1/missing": boom(new NotFoundError("network", "nosuch")),
		"POST /v1/taken": boom(new NameInUseError("networks", "web")),
		"POST /v1/joined": boom(new AlreadyInClusterError("c-1")),
		"POST /v1/noleader": boom(new NoLeaderError()),
		"POST /v1/raft": boom(new NotLeaderError(undefined)),
		"POST /v1/forwarded": boom(storeErrorFrom({ code: "ERR_NOT_FOUND", message: "network x not found", status: 404 })),
		"POST /v1/named500": boom(new AgentError("no address to advertise", "ERR_ADVERTISE_AMBIGUOUS")),
		"POST /v1/bug": boom(new TypeError("Cannot read properties of undefined (reading 'secret')")),
		"POST /v1/echo": (b) => ({ got: b }),
	});
	const sock = socketPath(dataRoot);
	const cases: Array<[string, number, string]> = [
		["/v1/usage", 400, "ERR_USAGE"],
		["/v1/spec", 400, "ERR_INVALID_NETWORK"],
		["/v1/missing", 404, "ERR_NOT_FOUND"],
		["/v1/taken", 409, "ERR_NAME_IN_USE"],
		["/v1/joined", 409, "ERR_ALREADY_IN_CLUSTER"],
		["/v1/noleader", 503, "ERR_NO_LEADER"],
		["/v1/raft", 503, "ERR_NOT_LEADER"],
		["/v1/forwarded", 404, "ERR_NOT_FOUND"],
		["/v1/named500", 500, "ERR_ADVERTISE_AMBIGUOUS"],
	];
	for (const [path, status, code] of cases) {
		const r = await raw(sock, "POST", path, "{}");
		t.match(r, { status, json: { code, error: /\w/ } }, `${path}: ${status} ${code}`);
	}
	const bug = await raw(sock, "POST", "/v1/bug", "{}");
	t.match(bug, { status: 500, json: { code: "ERR_INTERNAL" } }, "an unexpected error: 500 ERR_INTERNAL");
	t.notMatch(bug.json.error, /secret|undefined/, "with a generic message, not the internals");
	t.equal(logged.length, 1, "and logged, once");
	t.match(logged[0], { err: { message: /reading 'secret'/ }, route: "POST /v1/bug" });

	// Bad requests the server itself refuses, each with a named code.
	t.match(await raw(sock, "POST", "/v1/echo", "{not json"), { status: 400, json: { code: "ERR_INVALID_BODY" } });
	t.match(await raw(sock, "POST", "/v1/echo", "[1,2]"), {
		status: 400,
		json: { code: "ERR_INVALID_BODY", error: /list/ },
	});
	t.match(await raw(sock, "GET", "/v1/nosuch"), {
		status: 404,
		json: { code: "ERR_NO_SUCH_ROUTE", error: /GET \/v1\/nosuch/ },
	});
	t.match(await raw(sock, "POST", "/v1/echo", '{"a":1}'), { status: 200, json: { got: { a: 1 } } }, "a good request");

	// The CLI's client: the code and message, the HTTP status, and the exit code to end with.
	const usage = await call(dataRoot, "POST", "/v1/usage", {}).catch((e: unknown) => e);
	t.ok(usage instanceof ApiError, "the client rejects with ApiError");
	t.match(usage, { code: "ERR_USAGE", status: 400, exitCode: 2, message: "--replicas must be a number" });
	t.match(await call(dataRoot, "POST", "/v1/taken", {}).catch((e: unknown) => e), {
		code: "ERR_NAME_IN_USE",
		status: 409,
		exitCode: 1,
		message: /already exists/,
	});
	t.match(await call(dataRoot, "POST", "/v1/bug", {}).catch((e: unknown) => e), {
		code: "ERR_INTERNAL",
		status: 500,
		exitCode: 1,
		message: /log/,
	});
	const other = root(t);
	t.match(await call(other, "GET", "/v1/info").catch((e: unknown) => e), { code: "ERR_NO_AGENT", exitCode: 1 });
});

t.test("an oversized body is answered 413 without reading it all; the server serves the next request", async (t) => {
	const dataRoot = root(t);
	const max = 64 * 1024;
	let calls = 0;
	await serve(
		t,
		dataRoot,
		{ "POST /v1/echo": (b) => ({ n: ++calls, keys: Object.keys(b).length }) },
		{ maxBodyBytes: max },
	);
	const sock = socketPath(dataRoot);

	// Declared too large: refused at the header.
	const declared = await raw(sock, "POST", "/v1/echo", Buffer.alloc(max + 1, 0x20));
	t.match(declared, { status: 413, json: { code: "ERR_BODY_TOO_LARGE", error: /65536 bytes/ } });

	// Streamed with no length and no end: the server must answer once it has read past the bound.
	const streamed = await new Promise<{ status: number; code?: string; written: number }>((resolve, reject) => {
		let written = 0;
		let done = false;
		const req = request({ socketPath: sock, method: "POST", path: "/v1/echo" }, (res) => {
			done = true;
			const chunks: Buffer[] = [];
			res.on("data", (c: Buffer) => chunks.push(c));
			res.on("end", () =>
				resolve({ status: res.statusCode!, code: JSON.parse(Buffer.concat(chunks).toString()).code, written }),
			);
		});
		req.on("error", (err) => (done ? undefined : reject(err)));
		const chunk = Buffer.alloc(16 * 1024, 0x20);
		const pump = () => {
			while (!done) {
				if (written > 256 * 1024 * 1024) return reject(new Error("256 MiB sent and no answer: the body is unbounded"));
				written += chunk.length;
				if (!req.write(chunk)) return void req.once("drain", pump);
			}
		};
		pump();
	});
	t.match(streamed, { status: 413, code: "ERR_BODY_TOO_LARGE" }, "a streamed body over the bound: 413");
	t.ok(streamed.written < 16 * 1024 * 1024, `answered after ${streamed.written} bytes sent, not the whole stream`);

	// Through the CLI's client too, and the route never ran for any of them.
	t.match(await call(dataRoot, "POST", "/v1/echo", { big: "x".repeat(max) }).catch((e: unknown) => e), {
		code: "ERR_BODY_TOO_LARGE",
		status: 413,
	});
	t.equal(calls, 0, "no oversized body reached the route");
	t.same(await call(dataRoot, "POST", "/v1/echo", { a: 1 }), { n: 1, keys: 1 }, "the next request is served");
	t.same(
		await call(dataRoot, "POST", "/v1/echo", { b: "y".repeat(max - 100) }),
		{ n: 2, keys: 1 },
		"one under the bound too",
	);
});

t.test("root only from the first instant: a 0700 dir, a 0600 socket, even under umask 0", async (t) => {
	const dataRoot = root(t);
	const sock = socketPath(dataRoot);
	// A sloppy install left the socket dir world-writable; the process runs with umask 0.
	mkdirSync(join(dataRoot, "api"));
	chmodSync(join(dataRoot, "api"), 0o777);
	const umask = process.umask(0);
	t.teardown(() => void process.umask(umask));

	const s = new ControlServer(sock, { "GET /v1/info": () => ({ ok: true }) }, { logger: { error() {} } as never });
	t.teardown(() => s.close());
	// The moment the socket exists ('listening' comes before listen()'s callback and anything it does).
	let atBirth: { dir: number; sock: number; nobody: string; root: string } | undefined;
	s.server.prependOnceListener("listening", () => {
		atBirth = {
			dir: mode(join(dataRoot, "api")),
			sock: mode(sock),
			nobody: connectAs(NOBODY, sock),
			root: connectAs(0, sock),
		};
	});
	await s.listen();
	t.ok(atBirth, "observed the socket as it was created");
	t.equal(atBirth!.dir.toString(8), "700", "the socket dir was 0700 before the socket existed");
	t.equal(atBirth!.sock & 0o077, 0, `the socket was born without group/other bits (${atBirth!.sock.toString(8)})`);
	t.equal(atBirth!.nobody, "EACCES", "uid 65534 could not connect even then");
	t.equal(atBirth!.root, "CONNECTED", "root could (positive control)");

	t.equal(mode(join(dataRoot, "api")).toString(8), "700", "the dir stays 0700");
	t.equal(mode(sock).toString(8), "600", "the socket is 0600");
	t.equal(connectAs(NOBODY, sock), "EACCES", "uid 65534 is refused while serving");
	t.equal(connectAs(0, sock), "CONNECTED", "root connects");
	t.same(await call(dataRoot, "GET", "/v1/info"), { ok: true }, "and is answered");
	t.equal(process.umask(), 0, "the process umask is back as it was");
});

t.test("a socket dir owned by another user, or a symlink, is refused; nothing is made in it", async (t) => {
	const dataRoot = root(t);
	const dir = join(dataRoot, "api");
	mkdirSync(dir, { mode: 0o700 });
	chownSync(dir, NOBODY, NOBODY);
	const s = new ControlServer(socketPath(dataRoot), {}, { logger: { error() {} } as never });
	await t.rejects(s.listen(), { name: "SocketDirError", code: "ERR_SOCKET_DIR", message: /owned by uid 65534/ });
	t.notOk(existsSync(socketPath(dataRoot)), "no socket in the foreign dir");

	const other = root(t);
	const real = join(other, "elsewhere");
	mkdirSync(real, { mode: 0o700 });
	const linked = root(t);
	symlinkSync(real, join(linked, "api"));
	const l = new ControlServer(socketPath(linked), {}, { logger: { error() {} } as never });
	await t.rejects(l.listen(), { code: "ERR_SOCKET_DIR", message: /not a directory/ });
	t.notOk(existsSync(join(real, "tsswarm.sock")), "no socket through the symlink");

	// Positive control: our own dir, however loose, is taken and narrowed.
	chownSync(dir, 0, 0);
	chmodSync(dir, 0o755);
	const ok = new ControlServer(
		socketPath(dataRoot),
		{ "GET /v1/info": () => ({ ok: true }) },
		{
			logger: { error() {} } as never,
		},
	);
	await ok.listen();
	t.teardown(() => ok.close());
	t.equal(mode(dir).toString(8), "700");
	t.same(await call(dataRoot, "GET", "/v1/info"), { ok: true });
});

t.test("NDJSON: an async iterable is streamed line by line and stops when the client goes", async (t) => {
	const dir = root(t);
	let ended = false;
	let aborted = false;
	const { logged } = await serve(t, dir, {
		"POST /v1/count": async (b) =>
			(async function* () {
				for (let i = 0; i < Number(b.n); i++) yield { i };
			})(),
		"POST /v1/forever": (_b, { signal }) =>
			(async function* () {
				try {
					for (let i = 0; !signal.aborted; i++) {
						yield { i };
						await new Promise((r) => setTimeout(r, 20));
					}
					aborted = true;
				} finally {
					ended = true;
				}
			})(),
		"POST /v1/broken": () =>
			(async function* () {
				yield { i: 0 };
				throw new UsageError("went wrong halfway", "ERR_HALFWAY");
			})(),
		"POST /v1/refused": () => {
			throw new UsageError("no such thing", "ERR_NO_SUCH");
		},
	});
	const items: unknown[] = [];
	await callStream(dir, "/v1/count", { n: 3 }, (x) => items.push(x));
	t.same(items, [{ i: 0 }, { i: 1 }, { i: 2 }], "every item, in order, then the end");

	const half: unknown[] = [];
	const err = await callStream(dir, "/v1/broken", {}, (x) => half.push(x)).then(
		() => undefined,
		(e: ApiError) => e,
	);
	t.same(half, [{ i: 0 }], "the lines before the error arrive");
	t.equal(err?.code, "ERR_HALFWAY", "an error mid-stream is the last line, named");
	const before = await callStream(dir, "/v1/refused", {}, () => {}).then(
		() => undefined,
		(e: ApiError) => e,
	);
	t.equal(before?.code, "ERR_NO_SUCH", "an error before the stream is an ordinary error answer");
	t.equal(before?.status, 400, "with its class's status");

	const ac = new AbortController();
	const got: unknown[] = [];
	const done = callStream(
		dir,
		"/v1/forever",
		{},
		(x) => {
			got.push(x);
			if (got.length === 5) ac.abort();
		},
		{ signal: ac.signal },
	);
	await done;
	t.ok(got.length >= 5, "a stream without end delivers as it goes");
	await waitFor("the route to see the client gone", () => ended, { timeoutMs: 5000 });
	t.ok(aborted, "its signal aborted when the client disconnected");
	t.same(logged, [], "nothing logged as a bug");
});
