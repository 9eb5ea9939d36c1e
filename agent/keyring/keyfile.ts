// A manager's keys on disk (DATA/cluster/keys): the cluster secret every manager shares (it seals
// values in the store: join secrets, the cluster signing key, user secrets) and this manager's own
// data key (its Raft files). In the clear under 0600 unless autolocked: then sealed with the unlock key.
import { existsSync, readFileSync } from "node:fs";
import { pack, unpack } from "msgpackr";
import { writeFileAtomic } from "../../consensus/index.ts";
import { KeyFileError, KeysLockedError } from "./errors.ts";
import { KEY_BYTES, newKey, open, seal } from "./seal.ts";

export interface ManagerKeys {
	/** Shared by all managers; given to a new manager over Noise when it joins or is promoted. */
	clusterSecret: Uint8Array;
	/** This manager's own: encrypts its Raft log and snapshots. */
	dataKey: Uint8Array;
}

const AAD = "tsswarm-keys-1";

export function newManagerKeys(clusterSecret: Uint8Array = newKey()): ManagerKeys {
	return { clusterSecret, dataKey: newKey() };
}

const isKey = (k: unknown): k is Uint8Array => k instanceof Uint8Array && k.length === KEY_BYTES;

function checkKeys(path: string, v: unknown): ManagerKeys {
	const k = v as Partial<ManagerKeys> | undefined;
	if (!k || !isKey(k.clusterSecret) || !isKey(k.dataKey))
		throw new KeyFileError(path, "it does not hold a cluster secret and a data key of 32 bytes each");
	return { clusterSecret: new Uint8Array(k.clusterSecret), dataKey: new Uint8Array(k.dataKey) };
}

/** Write the keys, sealed with `unlockKey` when given (autolock). tmp + fsync + rename. */
export function writeKeyFile(path: string, keys: ManagerKeys, unlockKey?: Uint8Array): void {
	const body = pack({ clusterSecret: keys.clusterSecret, dataKey: keys.dataKey });
	const file = unlockKey
		? { v: 1, locked: true, sealed: seal(unlockKey, body, AAD) }
		: { v: 1, locked: false, keys: body };
	writeFileAtomic(path, pack(file));
}

export function keyFileExists(path: string): boolean {
	return existsSync(path);
}

/** Whether the file on disk is sealed with an unlock key (the manager starts locked). */
export function keyFileLocked(path: string): boolean {
	return readFile(path).locked === true;
}

function readFile(path: string): { v: number; locked: boolean; keys?: Uint8Array; sealed?: Uint8Array } {
	let f: unknown;
	try {
		f = unpack(readFileSync(path));
	} catch (err) {
		throw new KeyFileError(path, `unreadable (${(err as Error).message})`);
	}
	const o = f as { v?: unknown; locked?: unknown; keys?: unknown; sealed?: unknown } | undefined;
	if (o?.v !== 1 || typeof o.locked !== "boolean") throw new KeyFileError(path, "not a version 1 key file");
	if (o.locked ? !(o.sealed instanceof Uint8Array) : !(o.keys instanceof Uint8Array))
		throw new KeyFileError(path, "its body is missing");
	return o as { v: number; locked: boolean; keys?: Uint8Array; sealed?: Uint8Array };
}

/**
 * Read the keys. A locked file needs `unlockKey` (else KeysLockedError); a wrong one throws
 * SealedDataError, and the file is left as it was.
 */
export function readKeyFile(path: string, unlockKey?: Uint8Array): ManagerKeys {
	const f = readFile(path);
	if (!f.locked) return checkKeys(path, unpack(f.keys!));
	if (!unlockKey) throw new KeysLockedError();
	return checkKeys(path, unpack(open(unlockKey, f.sealed!, AAD)));
}
