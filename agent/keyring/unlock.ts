// Unlock keys as a person handles them: `TSWKEY-1-` and base64url of the 32-byte key plus a 4-byte
// checksum, so a mistyped key is named as such rather than failing as a wrong one.
import { createHash } from "node:crypto";
import { InvalidUnlockKeyError } from "./errors.ts";
import { KEY_BYTES } from "./seal.ts";

const PREFIX = "TSWKEY-1-";

const check = (key: Uint8Array) => createHash("sha256").update(key).digest().subarray(0, 4);

export function formatUnlockKey(key: Uint8Array): string {
	if (key.length !== KEY_BYTES) throw new RangeError(`an unlock key is ${KEY_BYTES} bytes`);
	return PREFIX + Buffer.concat([key, check(key)]).toString("base64url");
}

export function parseUnlockKey(s: unknown): Uint8Array {
	if (typeof s !== "string") throw new InvalidUnlockKeyError("expected a string");
	const t = s.trim();
	if (!t.startsWith(PREFIX)) throw new InvalidUnlockKeyError(`it must start with ${PREFIX}`);
	const body = t.slice(PREFIX.length);
	if (!/^[A-Za-z0-9_-]+$/.test(body)) throw new InvalidUnlockKeyError("it holds characters that are not base64url");
	const raw = Buffer.from(body, "base64url");
	// base64 decoding drops a trailing partial character: check the text's length, not only the bytes'.
	if (body.length !== Math.ceil(((KEY_BYTES + 4) * 4) / 3) || raw.length !== KEY_BYTES + 4)
		throw new InvalidUnlockKeyError(`wrong length (${t.length} characters)`);
	const key = raw.subarray(0, KEY_BYTES);
	if (!check(key).equals(raw.subarray(KEY_BYTES))) throw new InvalidUnlockKeyError("checksum mismatch (mistyped?)");
	return new Uint8Array(key);
}
