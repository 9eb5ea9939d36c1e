// Any manager admits (issue 15): the join keys live sealed in the store, so a manager that joined
// prints the same tokens, rotation on one manager refuses the old token on every manager at once,
// and with the init node SIGKILLed a new node still joins through a surviving manager. Then the
// data dirs and Raft files of every node are searched for the secrets in the clear.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { privateKeyToProtobuf } from "@libp2p/crypto/keys";
import { unpack } from "msgpackr";
import t from "tap";
import { fingerprint, parseToken } from "../../agent/join/index.ts";
import { dataCipher, readKeyFile } from "../../agent/keyring/index.ts";
import { openJoinKeys } from "../../agent/manager/index.ts";
import type { SealedJoinKeys } from "../../agent/store/index.ts";
import { FileLogStore } from "../../consensus/index.ts";
import { cliPath as cli, type LabAgent, startAgent } from "../helpers/agents.ts";
import { filesUnder, waitFor } from "../helpers/index.ts";
import { withLab } from "../helpers/lab.ts";

const TOKEN = /TSWARM-1-[a-z2-7]{25}-[a-z2-7]{32}/;

/** The files under dirs that hold these bytes. */
const holding = (dirs: string[], needle: Uint8Array) =>
	dirs.flatMap(filesUnder).filter((f) => readFileSync(f).includes(Buffer.from(needle)));

t.test("any manager admits: tokens on every manager, rotation cluster-wide, init node killed", async (t) => {
	const lab = await withLab(t, { nodes: 5 });
	const agents = new Map<string, LabAgent>();
	for (const n of lab.nodes) {
		const a = await startAgent(lab, n.name);
		agents.set(n.name, a);
		t.teardown(() => a.stop("SIGKILL"));
	}
	const node = (name: string) => lab.nodes.find((n) => n.name === name)!;
	const at = (name: string) => `${node(name).address}:2377`;
	const token = async (on: string, role: string, rotate = false) => {
		const r = await lab.exec(on, [cli, "join-token", role, ...(rotate ? ["--rotate"] : [])]);
		t.equal(r.code, 0, `join-token ${role}${rotate ? " --rotate" : ""} on ${on} (${r.stderr.trim()})`);
		return TOKEN.exec(r.stdout)?.[0] ?? "";
	};
	/** A manager that just joined prints tokens once its replica has the join keys. */
	const printed = (on: string, role: string) =>
		waitFor(
			`${on} to print the ${role} token`,
			async () => TOKEN.exec((await lab.exec(on, [cli, "join-token", role])).stdout)?.[0],
			{ timeoutMs: 30_000 },
		);
	const join_ = (on: string, tok: string, via: string) => lab.exec(on, [cli, "join", "--token", tok, at(via)]);

	const init = await lab.exec("n1", [cli, "init"]);
	t.equal(init.code, 0, init.stderr);
	const w1 = TOKEN.exec(init.stdout)?.[0] ?? "";
	const m1 = await token("n1", "manager");

	const j2 = await join_("n2", m1, "n1");
	t.equal(j2.code, 0, `n2 joins n1 as a manager (${j2.stderr.trim()})`);
	// n2 got the cluster secret in its grant: it prints the same tokens from its own replica.
	t.equal(await printed("n2", "manager"), m1, "the second manager prints the same manager token");
	t.equal(await token("n2", "worker"), w1, "and the same worker token");
	const j3 = await join_("n3", m1, "n2");
	t.equal(j3.code, 0, `n3 joins as a manager through n2 (${j3.stderr.trim()})`);
	t.match(j3.stdout, /as a manager/);
	t.equal(
		await printed("n3", "worker"),
		w1,
		"the manager that joined through the second manager prints the tokens too",
	);

	// Rotation on n2: the old worker token is refused at n1 at once, the new one works there.
	const w2 = await token("n2", "worker", true);
	t.ok(w2 && w2 !== w1, "rotation prints a new worker token");
	t.equal(await token("n1", "worker"), w2, "n1 prints the rotated token");
	const stale = await join_("n4", w1, "n1");
	t.equal(stale.code, 1, "the rotated-out token is refused at the init node");
	t.match(stale.stderr, /matches no current token/);
	const j4 = await join_("n4", w2, "n1");
	t.equal(j4.code, 0, `the new token works at n1 (${j4.stderr.trim()})`);

	// The init node destroyed (SIGKILL): n2 and n3 keep a majority of three voters and admit.
	await waitFor(
		"three raft voters",
		async () =>
			JSON.parse((await lab.exec("n2", [cli, "node", "ls", "--format", "json"])).stdout).filter(
				// Managers catch up as non-voters first ("Catching up"), then get the vote.
				(x: { managerStatus: string }) => x.managerStatus === "Leader" || x.managerStatus === "Reachable",
			).length === 3,
		{ timeoutMs: 60_000 },
	);
	const killedAt = Date.now();
	await agents.get("n1")!.stop("SIGKILL");
	const stale2 = await join_("n5", w1, "n2");
	t.equal(stale2.code, 1, "the rotated-out token is refused at n2 too");
	const j5 = await waitFor(
		"n5 to join through n2",
		async () => {
			// Until n2 and n3 elect a leader the grant cannot register n5; the join is retried.
			const r = await join_("n5", w2, "n2");
			if (r.code !== 0) throw new Error(r.stderr.trim());
			return r;
		},
		{ timeoutMs: 60_000, intervalMs: 3000 },
	);
	t.comment(`n5 joined through n2 ${Date.now() - killedAt} ms after n1 was killed`);
	t.match(j5.stdout, /as a worker/);
	await waitFor(
		"n3 to list n5",
		async () =>
			(
				JSON.parse((await lab.exec("n3", [cli, "node", "ls", "--format", "json"])).stdout) as Array<{ addr: string }>
			).some((x) => x.addr === at("n5")),
		{ timeoutMs: 30_000 },
	);

	// Nothing secret in the clear in any node's files (data, Raft log and snapshots, keys, logs).
	for (const n of ["n2", "n3", "n4", "n5"]) await agents.get(n)!.stop("SIGTERM");
	const dirs = lab.nodes.map((n) => n.dir);
	const clusterId = JSON.parse(readFileSync(join(node("n2").dir, "cluster", "state.json"), "utf8")).clusterId as string;
	const { clusterSecret } = readKeyFile(join(node("n2").dir, "cluster", "keys"));
	// Positive control: the sealed record in n1's Raft log (encrypted at rest with n1's data key)
	// opens with the cluster secret to what the tokens say.
	const { dataKey } = readKeyFile(join(node("n1").dir, "cluster", "keys"));
	const log = await FileLogStore.open({ dir: join(node("n1").dir, "raft", "log"), cipher: dataCipher(dataKey) });
	let sealed: SealedJoinKeys | undefined;
	for (let i = await log.firstIndex(); i <= (await log.lastIndex()); i++) {
		const e = await log.getLog(i);
		let tx: { ops?: Array<{ table?: string; value?: { joinKeys?: SealedJoinKeys } }> } | undefined;
		try {
			tx = e?.data.length ? (unpack(e.data) as typeof tx) : undefined;
		} catch {}
		for (const op of tx?.ops ?? []) if (op.table === "cluster" && op.value?.joinKeys) sealed = op.value.joinKeys;
	}
	await log.close();
	t.ok(sealed, "n1's Raft log holds the sealed join keys");
	const opened = openJoinKeys(clusterSecret, clusterId, sealed!);
	t.equal(opened.secrets.worker, parseToken(w2).secret, "they open to the rotated worker secret");
	t.equal(opened.secrets.manager, parseToken(m1).secret, "and the manager secret");
	t.equal(fingerprint(opened.signingKey.publicKey.raw), parseToken(w2).fingerprint, "and the key the tokens name");
	// Which nodes run as managers now: autopilot may have promoted a worker-token node to replace
	// the killed n1 (state.json's role is what a node runs).
	const managers = lab.nodes
		.filter((n) => JSON.parse(readFileSync(join(n.dir, "cluster", "state.json"), "utf8")).role === "manager")
		.map((n) => n.name)
		.sort();
	t.ok(
		["n1", "n2", "n3"].every((n) => managers.includes(n)),
		`the manager-token nodes are managers (${managers})`,
	);
	// The search reads the Raft segments of the managers (their format's magic is in the clear); a
	// node promoted a moment ago may have none yet.
	const rafted = holding(dirs, Buffer.from("RAFTLOG\x02", "latin1"))
		.map((f) => f.slice(lab.nodes[0]!.dir.length - 2).split("/")[0]!)
		.filter((n, i, a) => a.indexOf(n) === i)
		.sort();
	t.ok(
		["n1", "n2", "n3"].every((n) => rafted.includes(n)) && rafted.every((n) => managers.includes(n)),
		`the search reads the managers' Raft logs (${rafted})`,
	);

	for (const [what, bytes] of [
		["the manager secret", Buffer.from(parseToken(m1).secret)],
		["the old worker secret", Buffer.from(parseToken(w1).secret)],
		["the worker secret", Buffer.from(parseToken(w2).secret)],
		["the signing key", privateKeyToProtobuf(opened.signingKey)],
		["the signing key's seed", opened.signingKey.raw.subarray(0, 32)],
	] as const)
		t.same(holding(dirs, bytes), [], `${what} is in no node's files`);
	const secretAt = holding(dirs, clusterSecret).map((f) => f.slice(lab.nodes[0]!.dir.length - 2));
	t.ok(
		["n1", "n2", "n3"].every((n) => secretAt.includes(`${n}/cluster/keys`)) &&
			secretAt.every((f) => managers.some((n) => f === `${n}/cluster/keys`)),
		`the cluster secret is only in the managers' key files (${secretAt.sort()})`,
	);
});
