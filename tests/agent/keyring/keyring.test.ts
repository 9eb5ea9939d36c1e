// The keyring: sealed values open only with their key and their associated data, tampering and
// truncation are named, the key file round-trips in the clear and sealed, and unlock keys parse.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import {
	formatUnlockKey,
	InvalidUnlockKeyError,
	KeyFileError,
	KeysLockedError,
	keyFileLocked,
	newKey,
	newManagerKeys,
	open,
	parseUnlockKey,
	readKeyFile,
	SEAL_OVERHEAD,
	SealedDataError,
	seal,
	writeKeyFile,
} from "../../../agent/keyring/index.ts";

t.test("seal/open: the right key and aad open; anything else is refused by name", async (t) => {
	const k = newKey();
	const plain = Buffer.from("hunter2 is not a password");
	const s = seal(k, plain, "secret:abc");
	t.equal(s.length, plain.length + SEAL_OVERHEAD, "overhead is version + nonce + tag");
	t.notOk(Buffer.from(s).includes(plain), "the plaintext is not in the sealed bytes");
	t.same(Buffer.from(open(k, s, "secret:abc")), plain, "opens with its key and aad");
	t.not(
		Buffer.from(seal(k, plain, "x")).toString("hex"),
		Buffer.from(seal(k, plain, "x")).toString("hex"),
		"fresh nonce each time",
	);
	t.throws(() => open(newKey(), s, "secret:abc"), SealedDataError, "another key");
	t.throws(() => open(k, s, "secret:other"), SealedDataError, "another record's aad");
	const flipped = new Uint8Array(s);
	flipped[20]! ^= 1;
	t.throws(() => open(k, flipped, "secret:abc"), SealedDataError, "a flipped bit");
	t.throws(() => open(k, s.subarray(0, 10), "secret:abc"), /too short/, "truncated");
	const v2 = new Uint8Array(s);
	v2[0] = 2;
	t.throws(() => open(k, v2, "secret:abc"), /unknown seal version 2/, "unknown version");
	try {
		open(newKey(), s, "secret:abc");
	} catch (err) {
		t.notMatch((err as Error).message, /hunter2/, "the error never holds the data");
	}
});

t.test("key file: clear, sealed with an unlock key, locked without it, corrupt named", async (t) => {
	const dir = mkdtempSync(join(tmpdir(), "tsswarm-keyring-"));
	t.teardown(() => rmSync(dir, { recursive: true, force: true }));
	const f = join(dir, "keys");
	const keys = newManagerKeys();
	writeKeyFile(f, keys);
	t.equal(keyFileLocked(f), false, "written in the clear");
	t.same(readKeyFile(f), keys, "round-trips");
	const unlock = newKey();
	writeKeyFile(f, keys, unlock);
	t.equal(keyFileLocked(f), true, "sealed: locked");
	t.notOk(readFileSync(f).includes(Buffer.from(keys.clusterSecret)), "the cluster secret is not on disk in clear");
	t.throws(() => readKeyFile(f), KeysLockedError, "locked without the unlock key");
	t.throws(() => readKeyFile(f, newKey()), SealedDataError, "a wrong unlock key");
	t.same(readKeyFile(f, unlock), keys, "opens with it");
	writeFileSync(f, "garbage");
	t.throws(() => readKeyFile(f), KeyFileError, "garbage is named");
});

t.test("unlock keys: format and parse, typos named", async (t) => {
	const k = newKey();
	const s = formatUnlockKey(k);
	t.match(s, /^TSWKEY-1-[A-Za-z0-9_-]+$/, "printable");
	t.same(parseUnlockKey(`  ${s}\n`), k, "parses back (whitespace trimmed)");
	const typo = s.slice(0, -3) + (s.at(-3) === "A" ? "B" : "A") + s.slice(-2);
	t.throws(() => parseUnlockKey(typo), /checksum mismatch/, "a typo is named");
	t.throws(() => parseUnlockKey("SWMKEY-1-abc"), InvalidUnlockKeyError, "another prefix");
	t.throws(() => parseUnlockKey(`${s}x`), InvalidUnlockKeyError, "wrong length");
	t.throws(() => parseUnlockKey(42), InvalidUnlockKeyError, "not a string");
});
