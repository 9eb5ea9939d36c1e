// AES-256-GCM sealing for everything tsswarm keeps secret at rest or in the store: a version byte,
// a random 96-bit nonce, the ciphertext and the tag. The associated data binds a sealed value to
// what it is (e.g. "secret:ID"), so a value moved to another record does not open there.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { SealedDataError } from "./errors.ts";

const VERSION = 1;
const NONCE = 12;
const TAG = 16;
export const KEY_BYTES = 32;
/** What sealing adds to a value: version + nonce + tag. */
export const SEAL_OVERHEAD = 1 + NONCE + TAG;

/** A fresh random 256-bit key. */
export function newKey(): Uint8Array {
	return new Uint8Array(randomBytes(KEY_BYTES));
}

function checkKey(key: Uint8Array): void {
	if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw new RangeError(`a key is ${KEY_BYTES} bytes`);
}

export function seal(key: Uint8Array, plain: Uint8Array, aad: string): Uint8Array {
	checkKey(key);
	const nonce = randomBytes(NONCE);
	const c = createCipheriv("aes-256-gcm", key, nonce);
	c.setAAD(Buffer.from(aad));
	const body = Buffer.concat([c.update(plain), c.final()]);
	return new Uint8Array(Buffer.concat([Buffer.of(VERSION), nonce, body, c.getAuthTag()]));
}

/** Opens a sealed value; throws SealedDataError naming `aad` (never the data) when it does not open. */
export function open(key: Uint8Array, sealed: Uint8Array, aad: string): Uint8Array {
	checkKey(key);
	if (!(sealed instanceof Uint8Array) || sealed.length < SEAL_OVERHEAD)
		throw new SealedDataError(aad, "too short to be sealed");
	if (sealed[0] !== VERSION) throw new SealedDataError(aad, `unknown seal version ${sealed[0]}`);
	const nonce = sealed.subarray(1, 1 + NONCE);
	const tag = sealed.subarray(sealed.length - TAG);
	const d = createDecipheriv("aes-256-gcm", key, nonce);
	d.setAAD(Buffer.from(aad));
	d.setAuthTag(tag);
	try {
		return new Uint8Array(Buffer.concat([d.update(sealed.subarray(1 + NONCE, sealed.length - TAG)), d.final()]));
	} catch {
		throw new SealedDataError(aad, "wrong key or tampered data");
	}
}
