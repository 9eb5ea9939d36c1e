// The node directory and what crosses into it: a joiner's self-description, a manager's
// nodes.list reply, the persisted file. Garbage is refused with a named error, nothing replaced.

import { join } from "node:path";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import t from "tap";
import {
	BadDirectoryReplyError,
	InvalidNodeDescriptionError,
	NodeDirectory,
	parseNodeRecord,
	parseNodesListReply,
	validateDescription,
} from "../../../agent/nodes/index.ts";
import { tempDir } from "../../helpers/index.ts";

const newId = async () => peerIdFromPrivateKey(await generateKeyPair("Ed25519")).toString();
const desc = {
	hostname: "pi-1",
	addr: "198.18.0.9:2377",
	labels: { zone: "a" },
	platform: { os: "linux", architecture: "arm64", variant: "v8" },
	resources: { nanoCpus: 4e9, memoryBytes: 8 << 30 },
	engineVersion: "0.1.0",
};

t.test("a joiner's self-description: each bad field named", async (t) => {
	const id = await newId();
	t.same(validateDescription(id, desc), desc, "a good one passes whole");
	const cases: Array<[string, Record<string, unknown>, RegExp]> = [
		["addr", { ...desc, addr: "198.18.0.9" }, /addr must be IPv4:PORT/],
		["addr octet", { ...desc, addr: "300.1.1.1:2377" }, /addr/],
		["hostname", { ...desc, hostname: "a b" }, /hostname/],
		["platform", { ...desc, platform: { os: "linux" } }, /platform.architecture/],
		["resources", { ...desc, resources: { nanoCpus: -1, memoryBytes: 1 } }, /resources.nanoCpus/],
		["label key", { ...desc, labels: { "bad key": "x" } }, /label key/],
		["label value", { ...desc, labels: { k: 5 } }, /label k must be a string/],
		[
			"labels count",
			{ ...desc, labels: Object.fromEntries([...Array(65).keys()].map((i) => [`k${i}`, "v"])) },
			/at most 64/,
		],
		["version", { ...desc, engineVersion: "" }, /engineVersion/],
	];
	for (const [what, bad, msg] of cases)
		t.throws(() => validateDescription(id, bad), InvalidNodeDescriptionError, what) &&
			t.throws(() => validateDescription(id, bad), msg, `${what}: the message names it`);
	t.throws(() => validateDescription(id, "x"), InvalidNodeDescriptionError, "not an object");
	t.throws(
		() =>
			parseNodeRecord({
				...desc,
				id: "not-a-peer-id",
				role: "worker",
				availability: "active",
				createdAt: "2026-01-01",
			}),
		/id is not a peer id/,
	);
	t.throws(
		() => parseNodeRecord({ ...desc, id, role: "king", availability: "active", createdAt: "2026-01-01" }),
		/role must be manager or worker/,
	);
	const rec = parseNodeRecord({
		...desc,
		id,
		role: "worker",
		availability: "drain",
		createdAt: "2026-01-01T00:00:00Z",
	});
	t.equal(rec.availability, "drain", "a good record passes");
});

t.test("nodes.list replies are checked whole; a lagging manager does not roll us back", async (t) => {
	const [m, w] = [await newId(), await newId()];
	const nodes = [
		{ id: m, role: "manager", addr: "198.18.0.1:2377" },
		{ id: w, role: "worker", addr: "198.18.0.2:2377" },
	];
	t.same(parseNodesListReply(m, { ok: { version: 7, nodes } }, 3), { entries: nodes, version: 7 });
	t.equal(parseNodesListReply(m, { ok: { version: 7, unchanged: true } }, 7), undefined, "unchanged");
	t.equal(parseNodesListReply(m, { ok: { version: 2, nodes } }, 7), undefined, "older than ours: kept");
	const bad: Array<[string, unknown]> = [
		["an error reply", { error: { message: "nope" } }],
		["no version", { ok: { nodes } }],
		["nodes not a list", { ok: { version: 9, nodes: "all" } }],
		["a bad id", { ok: { version: 9, nodes: [...nodes, { id: "x", role: "worker", addr: "198.18.0.3:2377" }] } }],
		["a bad role", { ok: { version: 9, nodes: [{ ...nodes[0], role: "root" }] } }],
		["a bad addr", { ok: { version: 9, nodes: [{ ...nodes[0], addr: "localhost" }] } }],
		["sender not a manager in it", { ok: { version: 9, nodes: [nodes[1]] } }],
	];
	for (const [what, reply] of bad) t.throws(() => parseNodesListReply(m, reply, 3), BadDirectoryReplyError, what);
	t.throws(
		() => parseNodesListReply(w, { ok: { version: 9, nodes } }, 3),
		/does not name its sender/,
		"a worker's list",
	);
});

t.test("the directory persists, reports removals, and answers who is a manager", async (t) => {
	const dir = tempDir("tsswarm-directory-");
	t.teardown(dir.remove);
	const file = join(dir.path, "nodes.json");
	const [m, w] = [await newId(), await newId()];
	const d = new NodeDirectory(file);
	const removed: string[][] = [];
	d.on("removed", (ids) => removed.push(ids));
	d.set(
		[
			{ id: m, role: "manager", addr: "198.18.0.1:2377" },
			{ id: w, role: "worker", addr: "198.18.0.2:2377" },
		],
		5,
	);
	t.ok(d.has(w) && d.isManager(m) && !d.isManager(w), "roles");
	t.notOk(d.has(await newId()), "a stranger is not in it");
	const again = new NodeDirectory(file);
	t.equal(again.version, 5, "a restart reads the persisted version");
	t.ok(again.has(w) && again.isManager(m), "and the persisted nodes");
	d.set([{ id: m, role: "manager", addr: "198.18.0.1:2377" }], 6);
	t.same(removed, [[w]], "a node that is gone is reported");
	t.notOk(new NodeDirectory(file).has(w), "and gone after a restart too");
});
