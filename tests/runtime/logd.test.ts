// The log daemon's socket takes only "<container id>\n": garbage and oversized lines end that
// connection (logged as LogdRequestError) while the daemon keeps serving everyone else.
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import t from "tap";
import { logdAddress, logdAlive, spawnLogd, stopLogDaemon } from "../../runtime/container/logd-client.ts";
import { tempDir, waitFor } from "../helpers/index.ts";

/** Sends payload; resolves with what came back once the daemon closed, answered "ok", or 3 s passed. */
function talk(root: string, payload: Buffer | string): Promise<{ reply: string; closed: boolean }> {
	return new Promise((resolve) => {
		const sock = connect(logdAddress(root));
		let reply = "";
		const done = (closed: boolean) => {
			clearTimeout(timer);
			sock.destroy();
			resolve({ reply, closed });
		};
		const timer = setTimeout(() => done(false), 3000);
		sock.on("connect", () => sock.write(payload));
		sock.on("data", (d: Buffer) => {
			reply += d.toString();
			if (reply.includes("ok\n")) done(false);
		});
		sock.on("error", () => {});
		sock.on("close", () => done(true));
	});
}

t.test("garbage and oversized lines close their connection, logged; a valid request is still answered", async (t) => {
	const dir = tempDir("logd-");
	t.teardown(async () => {
		await stopLogDaemon(dir.path);
		dir.remove();
	});
	spawnLogd(dir.path, process.env);
	await waitFor("the log daemon", () => logdAlive(dir.path));
	const id = "a".repeat(64);
	const cases: Array<[string, Buffer | string]> = [
		["a line that is not an id", "hello\n"],
		["binary garbage", Buffer.from([0xff, 0x00, 0xfe, 0x0a])],
		["an id with a path after it", `${id}/../../etc\n`],
		["an oversized line", "a".repeat(200_000)],
	];
	for (const [what, payload] of cases) {
		const r = await talk(dir.path, payload);
		t.same(r, { reply: "", closed: true }, `${what}: closed without an answer`);
	}
	t.ok(logdAlive(dir.path), "the daemon is still running");
	// Positive control: a well-formed request, after all of that, is answered.
	t.same(await talk(dir.path, `${id}\n`), { reply: "ok\n", closed: false }, "a container id gets ok");
	const log = await waitFor("4 refusals in logd.log", () => {
		const l = readFileSync(join(dir.path, "logd.log"), "utf8");
		return (l.match(/LogdRequestError ERR_LOGD_REQUEST/g) ?? []).length >= 4 && l;
	});
	t.match(log, /not a container id: "hello"/);
	t.match(log, /a line longer than 64 bytes/);
});
